"""Running a study's trials: in this process, or in K worker processes on one study.

``allennlp tune ... --n-workers K`` starts K processes; each opens the study's storage itself
and runs the same loop (:func:`run_trials`): fail orphaned trials, check the budget, ask for a
trial (a queued retry first), train it. With ``--devices 0,1,2,3`` each worker sees only its own
GPU(s) (``CUDA_VISIBLE_DEVICES``) and the trainer's ``cuda_device`` is set to match; on CPU the
workers split the cores between their torch thread pools.

Several machines join one study by running the same command against one PostgreSQL or MySQL
``--storage`` with ``--skip-if-exists``; each machine's workers are independent processes of the
same kind.

Ctrl-C and SIGTERM end a worker's running trial as FAIL (never left RUNNING), end its child
processes (data-loader and distributed-training workers) and leave every finished trial and
its directory as they were; rerunning the command with ``--skip-if-exists`` resumes the study.
"""
import contextlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Type, Union

import optuna
from optuna.trial import FrozenTrial
from allennlp.common.checks import ConfigurationError

from allennlp_optuna.budget import AskLock, OverBudget, StudyBudget, TrialTickets
from allennlp_optuna.recovery import (
    DEFAULT_HEARTBEAT_INTERVAL,
    fail_orphaned_trials,
    fail_trials_of_this_process,
    recoverable_storage,
    record_worker,
)
from allennlp_optuna.errors import INTERRUPTED_EXIT_CODE
from allennlp_optuna.start_method import safe_context
from allennlp_optuna.study import OptunaSettings

logger = logging.getLogger(__name__)

OVER_BUDGET_ATTR = "over_budget"
"""Trial user attribute of a trial that lost the race for the last place in ``--max-trials``."""

INTERRUPTED_MESSAGE = (
    "interrupted; running trials were recorded as FAIL, finished ones are kept. "
    "Rerun the same command with --skip-if-exists to resume the study."
)
"""What ``allennlp tune`` prints when Ctrl-C / SIGTERM ends it (every running trial is FAIL by then)."""
_BUDGET_POLL_SECONDS = 1.0
_STOP_GRACE_SECONDS = 60


@dataclass
class WorkerPlan:
    """What one worker process gets: its GPUs, or its share of the CPU threads.

    Args:
        index: the worker's number, from 0.
        devices: the GPU ids it may use (empty on CPU).
        torch_threads: size of its torch thread pool (``None``: torch's default).
    """

    index: int
    devices: List[int] = field(default_factory=list)
    torch_threads: Optional[int] = None

    def environment(self) -> Dict[str, str]:
        """Environment variables the worker sets before torch touches a device."""
        env: Dict[str, str] = {}
        if self.devices:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in self.devices)
        if self.torch_threads is not None:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.torch_threads)
        return env

    def config_overrides(self) -> Dict[str, Any]:
        """Overrides that point the trainer at the worker's devices, renumbered from 0."""
        if len(self.devices) == 1:
            return {"trainer.cuda_device": 0}
        if len(self.devices) > 1:
            return {"distributed.cuda_devices": list(range(len(self.devices)))}
        return {}


def plan_workers(
    n_workers: Optional[int],
    devices: Optional[Sequence[int]] = None,
    devices_per_trial: int = 1,
    cpu_count: Optional[int] = None,
) -> List[WorkerPlan]:
    """Split the GPUs, or the CPU cores, between the workers.

    Args:
        n_workers: how many workers; with ``devices`` it defaults to one per
            ``devices_per_trial`` GPUs, else to 1.
        devices: GPU ids (``--devices 0,1,2,3``); ``None`` trains on CPU.
        devices_per_trial: GPUs each trial uses (more than one trains distributed).
        cpu_count: cores to split on CPU; defaults to the cores this process may use.

    Example::

        >>> [p.devices for p in plan_workers(None, [0, 1, 2, 3], devices_per_trial=2)]
        [[0, 1], [2, 3]]
        >>> [p.torch_threads for p in plan_workers(2, cpu_count=8)]
        [4, 4]
    """
    if devices_per_trial < 1:
        raise ConfigurationError(f"--devices-per-trial must be at least 1, got {devices_per_trial}")
    if devices:
        devices = list(devices)
        if len(set(devices)) != len(devices):
            raise ConfigurationError(f"--devices lists a GPU twice: {','.join(map(str, devices))}")
        fitting = len(devices) // devices_per_trial
        n_workers = fitting if n_workers is None else n_workers
        if n_workers < 1 or n_workers > fitting:
            raise ConfigurationError(
                f"--devices {','.join(map(str, devices))} holds {fitting} worker(s) of {devices_per_trial} GPU(s) "
                f"each, but --n-workers {n_workers} was asked for; list more devices or lower --n-workers"
            )
        return [
            WorkerPlan(i, devices[i * devices_per_trial : (i + 1) * devices_per_trial]) for i in range(n_workers)
        ]
    n_workers = 1 if n_workers is None else n_workers
    if n_workers < 1:
        raise ConfigurationError(f"--n-workers must be at least 1, got {n_workers}")
    if n_workers == 1:
        return [WorkerPlan(0)]
    cpus = cpu_count or len(os.sched_getaffinity(0))
    return [WorkerPlan(i, torch_threads=max(1, cpus // n_workers)) for i in range(n_workers)]


def with_overrides(overrides: Union[str, Dict[str, Any]], extra: Dict[str, Any]) -> Union[str, Dict[str, Any]]:
    """``overrides`` (a dict, or a Jsonnet string as ``allennlp train -o``) with ``extra`` on top."""
    if not extra:
        return overrides
    if isinstance(overrides, dict):
        return {**overrides, **extra}
    if not overrides.strip():
        return json.dumps(extra)
    return f"({overrides}) + {json.dumps(extra)}"  # Jsonnet: evaluated with the trial's ext vars


class _TrialGate:
    """The objective as a worker runs it: claim the trial, release the ask lock, check the budget."""

    def __init__(self, objective: Callable[[optuna.Trial], float], budget: Optional[StudyBudget], lock: AskLock):
        self.objective = objective
        self.budget = budget
        self.lock = lock

    def __call__(self, trial: optuna.Trial) -> float:
        record_worker(trial)
        self.lock.release()
        if self.budget is not None and not self.budget.admits(trial.study, trial.number):
            trial.set_user_attr(
                OVER_BUDGET_ATTR,
                f"not run: another worker took the last place of --max-trials {self.budget.max_trials} first",
            )
            raise OverBudget()
        return self.objective(trial)


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    lock: AskLock,
    *,
    tickets: TrialTickets,
    budget: Optional[StudyBudget] = None,
    deadline: Optional[float] = None,
    catch: Tuple[Type[Exception], ...] = (),
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
) -> None:
    """One worker's loop: run trials until the tickets, the budget or the time run out.

    Each trial goes through ``study.optimize``, so Optuna records its state, heartbeat and
    logs as usual; before each trial the worker fails orphaned trials of this host (queueing
    their retries) and waits while the study-wide budget is taken by running trials.

    Args:
        study: the study, opened on a storage with heartbeats.
        objective: the function to optimize.
        lock: serializes the budget check and ``ask`` with the other workers of this host.
        tickets: how many trials this command may still start (``--n-trials``).
        budget: the study-wide cap (``--max-trials``).
        deadline: ``time.time()`` after which no trial starts (``--timeout``).
        catch: exceptions recorded as FAIL without stopping.
        callbacks: Optuna study callbacks called after each trial.
    """
    gate = _TrialGate(objective, budget, lock)
    while deadline is None or time.time() < deadline:
        fail_orphaned_trials(study)
        if budget is not None and budget.reached(study):
            return
        lock.acquire()
        try:
            if budget is not None and not budget.has_room(study):
                lock.release()
                _fail_stale_trials(study)
                time.sleep(_BUDGET_POLL_SECONDS)
                continue
            if not tickets.take():
                return
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.optimize(gate, n_trials=1, catch=catch, callbacks=list(callbacks))
        except OverBudget:
            continue
        finally:
            lock.release()


def _fail_stale_trials(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within this block SIGINT and SIGTERM raise ``KeyboardInterrupt`` (see :class:`InterruptHandler`)."""
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handler = InterruptHandler()
        for signum in (signal.SIGINT, signal.SIGTERM):
            handlers[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, previous in handlers.items():
            signal.signal(signum, previous)


@contextlib.contextmanager
def ending_cleanly(study: optuna.Study) -> Iterator[None]:
    """Treat SIGTERM as Ctrl-C; on either, leave no trial of this process RUNNING and no child alive.

    Optuna records the trial that a ``KeyboardInterrupt`` stops as FAIL (and
    :class:`~allennlp_optuna.tuning.TrialObjective` its traceback); trials this process still
    holds are failed here, then its child processes are ended.
    """
    with interruptible():
        try:
            yield
        except KeyboardInterrupt:
            fail_trials_of_this_process(study)
            end_child_processes()
            raise


class InterruptHandler:
    """Signal handler: raise ``KeyboardInterrupt`` once, ignore repeats for a while.

    Ctrl-C reaches every process of the terminal's group and the parent forwards SIGTERM too;
    a repeated signal must not interrupt the bookkeeping that records the trial as FAIL. A
    signal after ``repeat_window`` seconds raises again. Processes forked while the handler is
    installed (data-loader workers) inherit it; there it gives the signal its default action.
    """

    def __init__(self, repeat_window: float = 30.0) -> None:
        self.owner = os.getpid()
        self.repeat_window = repeat_window
        self.first: Optional[float] = None

    def __call__(self, signum: int, frame: Any) -> None:
        if os.getpid() != self.owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        name = signal.Signals(signum).name
        now = time.monotonic()
        if self.first is not None and now - self.first < self.repeat_window:
            logger.warning("%s ignored: already ending the running trial.", name)
            return
        self.first = now
        logger.warning("Interrupted (%s): ending the running trial as FAIL.", name)
        raise KeyboardInterrupt


def end_child_processes(timeout: float = 10.0) -> None:
    """Terminate this process's children (data-loader, distributed-training workers), then kill them."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(timeout)
        if child.is_alive():
            child.kill()
            child.join(timeout)


@dataclass
class WorkerJob:
    """Everything a worker process needs to join the study and run trials (picklable)."""

    plan: WorkerPlan
    study_name: str
    storage: str
    settings: OptunaSettings
    objective: Any
    tickets: TrialTickets
    max_trials: Optional[int]
    deadline: Optional[float]
    catch: Tuple[Type[Exception], ...]
    heartbeat_interval: int
    reseed: bool
    callbacks: Tuple[Callable[[optuna.Study, FrozenTrial], None], ...] = ()


def run_job(job: WorkerJob) -> None:
    """Run one worker's loop in this process (the CLI process itself when there is one worker)."""
    for name, value in job.plan.environment().items():
        os.environ[name] = value
    if job.plan.torch_threads is not None:
        import torch

        torch.set_num_threads(job.plan.torch_threads)
    job.objective.overrides = with_overrides(job.objective.overrides, job.plan.config_overrides())
    study = optuna.load_study(
        study_name=job.study_name,
        storage=recoverable_storage(job.storage, job.heartbeat_interval),
        sampler=job.settings.sampler,
        pruner=job.settings.pruner,
    )
    if job.reseed:
        study.sampler.reseed_rng()  # workers given the same seeded sampler would sample alike
    budget = None if job.max_trials is None else StudyBudget(job.max_trials)
    lock = AskLock(job.storage, job.study_name)
    try:
        with ending_cleanly(study):
            run_trials(
                study,
                job.objective,
                lock,
                tickets=job.tickets,
                budget=budget,
                deadline=job.deadline,
                catch=job.catch,
                callbacks=job.callbacks,
            )
    finally:
        lock.remove()


def _worker_main(job: WorkerJob) -> None:
    try:
        run_job(job)
    except KeyboardInterrupt:
        # The trial is recorded and the children are ended. Leave without the interpreter's
        # exit handlers: they join queue threads of killed data-loader workers, which can hang.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(INTERRUPTED_EXIT_CODE)


def run_workers(
    study: optuna.Study,
    storage: str,
    objective: Any,
    *,
    settings: OptunaSettings,
    plans: List[WorkerPlan],
    n_trials: Optional[int] = None,
    max_trials: Optional[int] = None,
    timeout: Optional[float] = None,
    catch: Tuple[Type[Exception], ...] = (),
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
) -> None:
    """Run the study's trials with one worker per plan; the function behind ``--n-workers``.

    One plan without devices runs in this process; otherwise each plan gets a process
    (:func:`worker_context`). A worker killed
    from outside (SIGKILL, out of memory) has its trial failed and retried at once and is
    replaced, up to once per worker; a worker that stops on an error stops the others.

    Args:
        study: the study, already created or joined.
        storage: its storage URL (each worker opens its own connection).
        objective: the picklable objective (e.g. :class:`~allennlp_optuna.tuning.TrialObjective`).
        settings: the sampler and pruner.
        plans: one per worker (:func:`plan_workers`).
        n_trials: trials this call starts in total over its workers (``None``: no limit).
        max_trials: the study-wide budget of COMPLETE and PRUNED trials.
        timeout: seconds after which no new trial starts.
        catch: exceptions a trial may raise and be recorded as FAIL without stopping.
        heartbeat_interval: seconds between a running trial's heartbeats.
        callbacks: Optuna study callbacks, called in the worker after each of its trials.
    """
    in_process = len(plans) == 1 and not plans[0].devices
    context = worker_context()
    tickets = TrialTickets(n_trials, None if in_process else context)
    deadline = None if timeout is None else time.time() + timeout

    def job(plan: WorkerPlan) -> WorkerJob:
        return WorkerJob(
            plan, study.study_name, storage, settings, objective, tickets, max_trials, deadline, catch,
            heartbeat_interval, reseed=len(plans) > 1, callbacks=tuple(callbacks),
        )

    if in_process:
        run_job(job(plans[0]))
        return
    if storage.startswith("sqlite"):
        logger.warning(
            "%d workers share the SQLite file of %s: SQLite lets one process write at a time and cannot be "
            "shared between machines; for parallel studies use PostgreSQL or MySQL "
            "(--storage postgresql://user:password@host/db).",
            len(plans),
            storage,
        )
    release_connections(study)
    workers = {plan.index: _start(context, job(plan)) for plan in plans}
    study = optuna.load_study(study_name=study.study_name, storage=recoverable_storage(storage, heartbeat_interval))
    with interruptible():
        try:
            _supervise(study, workers, lambda index: _start(context, job(plans[index])), max_restarts=len(plans))
        except BaseException as error:
            _stop_workers(list(workers.values()))
            interrupted = isinstance(error, KeyboardInterrupt)
            fail_orphaned_trials(study, "KeyboardInterrupt: stopped by Ctrl-C or SIGTERM; " if interrupted else "")
            raise
        finally:
            stop_fork_server()


def _supervise(
    study: optuna.Study, workers: Dict[int, Any], restart: Callable[[int], Any], max_restarts: int
) -> None:
    """Wait for the workers; replace killed ones (their trials are retried), stop on a worker's error."""
    restarts = 0
    while workers:
        multiprocessing.connection.wait([w.sentinel for w in workers.values()])
        for index, worker in list(workers.items()):
            if worker.exitcode is None:
                continue
            del workers[index]
            if worker.exitcode == 0:
                continue
            if worker.exitcode < 0 and restarts < max_restarts:
                restarts += 1
                name = signal.Signals(-worker.exitcode).name
                logger.warning("Worker %d (pid %d) was killed by %s; replacing it.", index, worker.pid, name)
                fail_orphaned_trials(study)
                release_connections(study)
                workers[index] = restart(index)
                continue
            raise ConfigurationError(
                f"worker {index} stopped with exit status {worker.exitcode} (its error is above); "
                "pass --skip-exception to record failing trials as FAIL and go on"
            )


def worker_context() -> Any:
    """How worker processes start: from a fork server, never by ``fork`` (see :mod:`~allennlp_optuna.start_method`)."""
    return safe_context()


def stop_fork_server() -> None:
    """End the fork server that started the workers, and wait for it.

    Left alone it would end only when this process does, after ``tune`` has returned. Python
    has no public call for it: ``multiprocessing.forkserver._forkserver._stop`` (Python 3.8 to
    3.13) is what CPython's own tests use; where it is missing the server ends with this
    process, as before. It starts again on demand.
    """
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()


def release_connections(study: optuna.Study) -> None:
    """Close the pooled database connections of ``study``'s storage (it reconnects when used)."""
    backend = getattr(study._storage, "_backend", study._storage)
    engine = getattr(backend, "engine", None)
    if engine is not None:
        engine.dispose()


def _start(context: Any, job: WorkerJob) -> Any:
    process = context.Process(target=_worker_main, args=(job,), name=f"allennlp-tune-worker-{job.plan.index}")
    process.start()
    return process


def _stop_workers(workers: List[Any]) -> None:
    """SIGTERM the workers (each fails its trial and ends its children); kill those that hang, with their children."""
    for worker in workers:
        if worker.is_alive():
            os.kill(worker.pid, signal.SIGTERM)
    deadline = time.time() + _STOP_GRACE_SECONDS
    for worker in workers:
        worker.join(max(0.0, deadline - time.time()))
        if worker.is_alive():
            logger.warning("Worker pid %d did not stop within %d s; killing it.", worker.pid, _STOP_GRACE_SECONDS)
            for pid in [*descendants(worker.pid), worker.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            worker.join()


def descendants(pid: int) -> List[int]:
    """The processes descending from ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as file:
                    parent = int(file.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found
