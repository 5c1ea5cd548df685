"""A trainer callback for the tests of resume, workers and outages: records epochs, kills, holds, waits.

Add ``{"type": "test_training_probe"}`` to ``trainer.callbacks`` (``--include-package
tests.training_probe``) and set :data:`PROBE_ENV` to a directory:

* every epoch a run trains (not one replayed from a checkpoint) appends ``RUN_DIR EPOCH`` to
  ``DIRECTORY/epochs.txt``;
* with :data:`KILL_ENV` set to ``EPOCH`` (or ``EPOCH:RUN_NAME``, the run directory's last
  component), the first training batch of that epoch SIGKILLs the process, as the out-of-memory
  killer would, once: a marker file keeps the retry alive;
* with :data:`BARRIER_ENV` set to ``N``, a run's start appends its process id to
  ``DIRECTORY/started.txt`` and waits (up to :data:`BARRIER_SECONDS`) until ``N`` processes have
  started a run: the tests of parallel workers use it so that every worker trains a trial, however
  slowly a worker process starts;
* with :data:`HOLD_ENV` set to a file's path, every epoch's end waits while that file exists
  (up to :data:`BARRIER_SECONDS`), before the pruning callback reports the epoch: a test can hold
  trials mid-training, take the storage down, and let them report into the outage;
* with :data:`STALL_ENV` set to ``EPOCH``, the first training batch of that epoch (the checkpoint of
  the epochs before it written) waits (up to :data:`BARRIER_SECONDS`), once: the first run to get
  there appends ``RUN_DIR TASK`` to ``DIRECTORY/stalled.txt``, ``TASK`` being the SLURM task it runs
  in (``ARRAYID_TASK``), so that a test can requeue or cancel that task in the middle of a trial.
"""
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from allennlp.training.callbacks.callback import TrainerCallback

PROBE_ENV = "ALLENNLP_OPTUNA_TEST_PROBE"
KILL_ENV = "ALLENNLP_OPTUNA_TEST_KILL"
BARRIER_ENV = "ALLENNLP_OPTUNA_TEST_BARRIER"
HOLD_ENV = "ALLENNLP_OPTUNA_TEST_HOLD"
STALL_ENV = "ALLENNLP_OPTUNA_TEST_STALL"
BARRIER_SECONDS = 120.0


@TrainerCallback.register("test_training_probe")
class TrainingProbe(TrainerCallback):
    """See the module's docstring."""

    def on_start(self, trainer: Any, is_primary: bool = True, **kwargs: Any) -> None:
        if os.environ.get(BARRIER_ENV):
            wait_for_processes(int(os.environ[BARRIER_ENV]))

    def on_batch(self, trainer: Any, batch_inputs: List[Any], batch_outputs: List[Dict[str, Any]],
                 batch_metrics: Dict[str, Any], epoch: int, batch_number: int, is_training: bool,
                 is_primary: bool = True, **kwargs: Any) -> None:
        if is_training and os.environ.get(STALL_ENV) == str(epoch) and claim(probe_dir() / "stall"):
            task = f"{os.environ.get('SLURM_ARRAY_JOB_ID')}_{os.environ.get('SLURM_ARRAY_TASK_ID')}"
            with open(probe_dir() / "stalled.txt", "a") as record:
                record.write(f"{self.serialization_dir} {task}\n")
            wait_until(lambda: False)
        target = kill_target()
        if target is None or not is_training or epoch != target[0]:
            return
        if target[1] and Path(self.serialization_dir).name != target[1]:
            return
        marker = probe_dir() / "killed"
        if not marker.exists():
            marker.write_text(f"{self.serialization_dir} {epoch}\n")
            os.kill(os.getpid(), signal.SIGKILL)

    def on_epoch(self, trainer: Any, metrics: Dict[str, Any], epoch: int, is_primary: bool = True,
                 **kwargs: Any) -> None:
        with open(probe_dir() / "epochs.txt", "a") as record:
            record.write(f"{self.serialization_dir} {epoch}\n")
        if os.environ.get(HOLD_ENV):
            wait_until(lambda: not os.path.exists(os.environ[HOLD_ENV]))


def claim(marker: Path) -> bool:
    """Create ``marker``; ``False`` when it exists already (another process claimed it first)."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        return True
    except FileExistsError:
        return False


def wait_for_processes(count: int) -> None:
    """Record this process as started, then wait until ``count`` processes have (or the time is up)."""
    started = probe_dir() / "started.txt"
    with open(started, "a") as record:
        record.write(f"{os.getpid()}\n")
    wait_until(lambda: len(set(started.read_text().split())) >= count)


def wait_until(condition: Callable[[], bool]) -> None:
    """Return once ``condition()`` holds, or after :data:`BARRIER_SECONDS` (the test then fails on its own)."""
    deadline = time.monotonic() + BARRIER_SECONDS
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def probe_environment(directory: Path, settings: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment of an `allennlp` process that runs the probe: records in ``directory``, this
    repository importable (``--include-package tests.training_probe``), and ``settings``
    (:data:`KILL_ENV`, :data:`BARRIER_ENV`, :data:`HOLD_ENV`)."""
    return {PROBE_ENV: str(directory), "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **(settings or {})}


def probe_dir() -> Path:
    return Path(os.environ[PROBE_ENV])


def kill_target() -> Optional[Tuple[int, str]]:
    value = os.environ.get(KILL_ENV)
    if not value:
        return None
    epoch, _, run = value.partition(":")
    return int(epoch), run


def trained_epochs(directory: Path) -> Dict[str, List[int]]:
    """``{run directory: [epochs trained there, in order]}`` from the probe's record in ``directory``."""
    epochs: Dict[str, List[int]] = {}
    record = directory / "epochs.txt"
    for line in record.read_text().splitlines() if record.exists() else []:
        run, epoch = line.rsplit(" ", 1)
        epochs.setdefault(run, []).append(int(epoch))
    return epochs
