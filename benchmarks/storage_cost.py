"""What a trial costs in the storage: a journal file, SQLite and PostgreSQL, with several processes.

Each run is a fresh study that P processes (spawned, each with its own storage object, as
SLURM array tasks or ``--n-workers`` would have) fill with ``study.optimize`` until the
study has N trials. The objective is trivial: it suggests 5 parameters, reports 3 intermediate
values and returns a value (10 writes per trial); the sampler is a seeded RandomSampler, whose
cost is negligible. So the wall time is what the storage costs: its writes, reads and waits for
its lock. The clock starts when every process has opened the study and stops when the last one
finishes; each process also adds up the seconds its calls into the storage took (waits for the
lock and for the CPU included), the "storage s/trial" column. Run from the repository root:

    python -m benchmarks.storage_cost                           # 1000 trials, 2 and 8 processes, every storage
    python -m benchmarks.storage_cost --trials 200 --processes 2 4 --storages journal sqlite
    python -m benchmarks.storage_cost --directory /shared/scratch   # journal and SQLite files on that filesystem

Storages: ``journal`` (``JournalStorage`` on a ``JournalFileBackend`` with a
``JournalFileOpenLock``, as a SLURM job array on a shared filesystem would use), ``sqlite`` and
``postgresql``: the server ``ALLENNLP_OPTUNA_TEST_POSTGRES`` names, or a throwaway one started
with ``scripts/test-postgres`` (:mod:`benchmarks.postgres`; Debian's postgresql). A first row,
``in-memory``, one process, is the cost of Optuna itself without a storage. Prints a table
(storage, processes, trials, wall seconds, seconds per trial, trials per second, storage seconds
per trial) and when a journal file stops being enough. On one machine the processes also share
its cores; SLURM workers on separate nodes do not, so there PostgreSQL can gain from more
processes, while a journal file, one lock for all writers, cannot.
"""
import argparse
import contextlib
import multiprocessing
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Optional

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

STORAGES = ("journal", "sqlite", "postgresql")
SHARE_OF_TIME = 0.1
"""A storage is enough while it takes less than this share of the study's time."""


@dataclass(frozen=True)
class StorageSpec:
    """How each process opens the storage (a picklable description, not the storage object)."""

    kind: str
    location: str  # a file path for the journal, a SQLAlchemy URL otherwise

    def open(self) -> BaseStorage:
        if self.kind == "journal":
            return JournalStorage(JournalFileBackend(self.location, lock_obj=JournalFileOpenLock(self.location)))
        engine_kwargs = {"connect_args": {"timeout": 120}} if self.kind == "sqlite" else None
        return RDBStorage(self.location, engine_kwargs=engine_kwargs)


class TimedStorage:
    """A storage that adds up the seconds spent in its methods (``seconds``); otherwise the storage itself."""

    def __init__(self, storage: BaseStorage) -> None:
        self._storage = storage
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._storage, name)
        if not callable(attribute):
            return attribute

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return timed


@dataclass(frozen=True)
class Row:
    storage: str
    processes: int
    trials: int
    seconds: float
    storage_seconds: float

    @property
    def seconds_per_trial(self) -> float:
        return self.seconds / self.trials

    @property
    def trials_per_second(self) -> float:
        return self.trials / self.seconds

    @property
    def storage_seconds_per_trial(self) -> float:
        return self.storage_seconds / self.trials


def objective(trial: optuna.Trial) -> float:
    values = [trial.suggest_float(f"x{i}", -10.0, 10.0) for i in range(5)]
    for step in range(3):
        trial.report(sum(values) / (step + 1), step)
    return sum(v * v for v in values)


def optimize(spec: StorageSpec, study_name: str, n_trials: int, seed: int, ready: Any, spent: Any) -> None:
    """One process: open the study, wait for the others, run ``n_trials`` trials; put its storage seconds in ``spent``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = TimedStorage(optuna.storages.get_storage(spec.open()))  # RDB storages get Optuna's cache, as usual
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler(seed))
    ready.wait()
    storage.seconds = 0.0
    study.optimize(objective, n_trials=n_trials)
    spent.put(storage.seconds)


def run(spec: StorageSpec, processes: int, trials: int) -> Row:
    """Fill a fresh study with ``trials`` trials from ``processes`` processes; time it."""
    study_name = f"storage-cost-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=study_name, storage=spec.open())
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1)
    spent = context.Queue()
    shares = [trials // processes + (i < trials % processes) for i in range(processes)]
    workers = [context.Process(target=optimize, args=(spec, study_name, share, seed, ready, spent))
               for seed, share in enumerate(shares)]
    for worker in workers:
        worker.start()
    ready.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    if any(worker.exitcode != 0 for worker in workers):
        raise RuntimeError(f"{spec.kind}: a process failed (exit codes {[w.exitcode for w in workers]})")
    storage_seconds = sum(spent.get() for _ in workers)
    storage = spec.open()
    finished = len(optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False))
    if finished != trials:
        raise RuntimeError(f"{spec.kind}: the study has {finished} trials, expected {trials}")
    if spec.kind == "postgresql":
        optuna.delete_study(study_name=study_name, storage=storage)  # the server may be someone else's
    return Row(spec.kind, processes, trials, seconds, storage_seconds)


def in_memory(trials: int) -> Row:
    storage = TimedStorage(optuna.storages.InMemoryStorage())
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(0))
    storage.seconds = 0.0
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return Row("in-memory", 1, trials, time.perf_counter() - started, storage.seconds)


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """``ALLENNLP_OPTUNA_TEST_POSTGRES`` if set, else a throwaway server of this run's own."""
    given = os.environ.get("ALLENNLP_OPTUNA_TEST_POSTGRES")
    if given:
        yield given
        return
    from benchmarks.postgres import throwaway_postgres

    with throwaway_postgres() as server:
        yield server.url


def fresh_storage(kind: str, directory: Path, postgres: Optional[str]) -> StorageSpec:
    """A fresh storage of ``kind`` for one run (new files; PostgreSQL studies get unique names)."""
    run_id = uuid.uuid4().hex[:8]
    if kind == "journal":
        return StorageSpec(kind, str(directory / f"journal-{run_id}.log"))
    if kind == "sqlite":
        return StorageSpec(kind, f"sqlite:///{directory / f'sqlite-{run_id}.db'}")
    assert postgres is not None
    return StorageSpec(kind, postgres)


def conclusion(rows: List[Row]) -> str:
    """When the journal file's measured throughput stops being enough."""
    journal = [row for row in rows if row.storage == "journal"]
    if not journal:
        return "(no journal runs: no conclusion)"
    busiest = max(journal, key=lambda row: row.processes)
    limit = busiest.trials_per_second * SHARE_OF_TIME
    workers = 100
    others = [row for row in rows if row.storage == "postgresql" and row.processes == busiest.processes]
    compared = f", PostgreSQL {others[0].trials_per_second:.0f}" if others else ""
    return (
        f"A journal file did {busiest.trials_per_second:.0f} trials/s here with {busiest.processes} processes"
        f"{compared}; every write takes its one lock and an fsync, so it stops being enough when the study "
        f"finishes more than ~{limit:.0f} trials/s (storage over {SHARE_OF_TIME:.0%} of the time), e.g. "
        f"{workers} workers with trials under {workers / limit:.0f} s, and sooner on a shared filesystem with "
        f"slower fsync (measure it there with --directory)."
    )


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="trials per study, all processes together")
    parser.add_argument("--processes", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--storages", nargs="+", choices=STORAGES, default=list(STORAGES))
    parser.add_argument("--directory", type=Path, default=None,
                        help="where the journal and SQLite files go, in a temporary directory removed after "
                             "(default: the system's temporary directory)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    rows = [in_memory(args.trials)]
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=args.directory)))
        postgres = stack.enter_context(postgres_url()) if "postgresql" in args.storages else None
        for kind in args.storages:
            for processes in args.processes:
                rows.append(run(fresh_storage(kind, directory, postgres), processes, args.trials))
                print(f"{kind} x {processes}: {rows[-1].seconds:.1f} s", flush=True)

    print()
    print(f"{'storage':<11} {'processes':>9} {'trials':>7} {'wall s':>8} {'s/trial':>9} {'trials/s':>9} "
          f"{'storage s/trial':>16}")
    for row in rows:
        print(f"{row.storage:<11} {row.processes:>9} {row.trials:>7} {row.seconds:>8.1f} "
              f"{row.seconds_per_trial:>9.4f} {row.trials_per_second:>9.1f} {row.storage_seconds_per_trial:>16.4f}")
    print()
    print(conclusion(rows))


if __name__ == "__main__":
    main()
