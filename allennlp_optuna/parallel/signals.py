"""Ending cleanly: Ctrl-C and SIGTERM end a worker's running trial as FAIL, never leave it RUNNING, and end
its child processes (data-loader and distributed-training workers).

Inside a SLURM job, SIGTERM and SIGUSR1 come from SLURM taking the node: the trial is retried from its
checkpoint at once (see :mod:`allennlp_optuna.faults.preemption`).
"""
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from typing import Any, Dict, Iterator, List, Optional

import optuna

from allennlp_optuna.faults.preemption import Preempted, preemption_signals, retry_preempted_trials
from allennlp_optuna.faults.recovery import fail_trials_of_this_process

logger = logging.getLogger(__name__)


INTERRUPTED_MESSAGE = (
    "interrupted; running trials were recorded as FAIL, finished ones are kept. "
    "Rerun the same command with --skip-if-exists to resume the study."
)
"""What ``allennlp tune`` prints when Ctrl-C / SIGTERM ends it (every running trial is FAIL by then)."""

_deferred: Dict[str, Any] = {"active": False, "pending": None}
"""While ``active``, an interruption is kept in ``pending`` instead of raised (see :func:`defer_interrupts`)."""


def defer_interrupts() -> None:
    """Keep Ctrl-C and SIGTERM from interrupting Optuna's ``ask`` until :func:`resume_interrupts`.

    ``ask`` creates the trial RUNNING, then samples its parameters, before this process records
    that it runs the trial (``record_worker``); a ``KeyboardInterrupt`` in between would leave a trial
    RUNNING that no cleanup can tell is this process's. The interruption waits for the record.
    """
    _deferred["active"], _deferred["pending"] = True, None


def resume_interrupts() -> None:
    """End :func:`defer_interrupts`, raising the interruption that came meanwhile, if any."""
    pending = _deferred["pending"]
    _deferred["active"], _deferred["pending"] = False, None
    if pending is not None:
        raise pending


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within this block SIGINT and SIGTERM raise ``KeyboardInterrupt``, and inside a SLURM job SIGTERM
    and SIGUSR1 raise :class:`~allennlp_optuna.faults.preemption.Preempted` (see :class:`InterruptHandler`)."""
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handler = InterruptHandler()
        for signum in {signal.SIGINT, signal.SIGTERM, *handler.preemption}:
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
    holds are failed here, the retries of those SLURM stopped are queued, then its child processes are ended.
    """
    with interruptible():
        try:
            yield
        except KeyboardInterrupt as interruption:
            fail_trials_of_this_process(study)
            if isinstance(interruption, Preempted):
                retry_preempted_trials(study)
            end_child_processes()
            raise


class InterruptHandler:
    """Signal handler: raise ``KeyboardInterrupt`` (``Preempted`` for SLURM's signals in a SLURM job) once,
    ignore repeats for a while.

    Ctrl-C reaches every process of the terminal's group and the parent forwards SIGTERM too;
    a repeated signal must not interrupt the bookkeeping that records the trial as FAIL. A
    signal after ``repeat_window`` seconds raises again. Processes forked while the handler is
    installed (data-loader workers) inherit it; there it gives the signal its default action.
    """

    def __init__(self, repeat_window: float = 30.0) -> None:
        self.owner = os.getpid()
        self.repeat_window = repeat_window
        self.first: Optional[float] = None
        self.preemption = preemption_signals()

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
        if signum in self.preemption:
            logger.warning("%s from SLURM: ending the running trial as FAIL; it is retried from its last checkpoint.",
                           name)
            interruption: KeyboardInterrupt = Preempted(name)
        else:
            logger.warning("Interrupted (%s): ending the running trial as FAIL.", name)
            interruption = KeyboardInterrupt()
        if _deferred["active"]:
            _deferred["pending"] = interruption  # raised once the trial records its worker
            return
        raise interruption


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

