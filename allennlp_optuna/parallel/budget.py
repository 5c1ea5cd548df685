"""How many trials run: ``--n-trials`` for one command, ``--max-trials`` for the whole study.

* ``--n-trials N`` (:class:`TrialTickets`): the trials *this command* starts, shared by its
  ``--n-workers`` (N in total, not N per worker), whatever their outcome, as ``study.optimize``
  counts ``n_trials``. Rerunning with ``--skip-if-exists`` runs N more.
* ``--max-trials M`` (:class:`StudyBudget`): a cap on the *study*: workers of every command,
  on every machine, stop once M trials are COMPLETE or PRUNED; exactly M, not up to M plus
  the number of workers. FAIL trials do not count, so a crashed trial's retry fits in the budget.

Optuna's ``MaxTrialsCallback`` stops a worker only after a trial finishes, so K workers could
overshoot the budget by K - 1. A worker therefore starts a trial only while the trials that are
finished, running or queued leave room (:meth:`StudyBudget.has_room`); workers on one host
take turns for that check and the ``ask`` (:class:`AskLock`). Workers on different machines can
still race; the trial that loses is admitted by its number (:meth:`StudyBudget.admits`) and
ends FAIL before it samples anything.

Both the in-process loop (Optuna's own ``study.optimize``) and each worker process's loop go
through one :class:`TrialGate`: it waits for room before a trial starts and admits (or ends) the
trial once it has its number.
"""
import fcntl
import hashlib
import multiprocessing
import os
import tempfile
import time
from typing import IO, Any, Callable, Optional

import optuna
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.faults.recovery import fail_orphaned_trials, fail_stale_trials, record_worker
from allennlp_optuna.core.trial_attrs import OVER_BUDGET_ATTR
from allennlp_optuna.parallel.signals import defer_interrupts, resume_interrupts

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
"""Trial states that use up the study-wide budget."""

RESERVED = (TrialState.RUNNING, TrialState.WAITING)
"""Trial states that may still use up the budget."""

BUDGET_POLL_SECONDS = 1.0
"""How often a worker waiting for room in the budget looks again."""


class OverBudget(Exception):
    """Raised for a trial created after the study-wide budget was already taken."""


class StudyBudget:
    """The study-wide cap ``--max-trials``: exactly ``max_trials`` COMPLETE or PRUNED trials.

    Args:
        max_trials: the number of COMPLETE plus PRUNED trials at which every worker stops.
    """

    def __init__(self, max_trials: int) -> None:
        self.max_trials = max_trials

    def finished(self, study: optuna.Study) -> int:
        """The trials that count: COMPLETE and PRUNED."""
        return len(study.get_trials(deepcopy=False, states=COUNTED))

    def reached(self, study: optuna.Study) -> bool:
        """Whether the study has its ``max_trials`` COMPLETE and PRUNED trials."""
        return self.finished(study) >= self.max_trials

    def has_room(self, study: optuna.Study) -> bool:
        """Whether a new trial may start: finished and running trials leave room for it.

        A queued (WAITING) trial, such as a retry, is started before any new one, so it takes
        no place of its own.
        """
        taken = study.get_trials(deepcopy=False, states=(*COUNTED, TrialState.RUNNING))
        return len(taken) < self.max_trials

    def admits(self, study: optuna.Study, trial_number: int) -> bool:
        """Whether trial ``trial_number`` fits: fewer than ``max_trials`` trials before it may still count.

        Trial numbers are given out one at a time by the storage, and a trial that ends COMPLETE
        or PRUNED was RUNNING or WAITING before, so admitting a trial only while the trials
        numbered before it that are (or may become) counted are fewer than the budget never
        lets more than ``max_trials`` trials count, however many workers race.
        """
        before = [
            t
            for t in study.get_trials(deepcopy=False, states=(*COUNTED, *RESERVED))
            if t.number < trial_number
        ]
        return len(before) < self.max_trials


def study_wide_target(study: optuna.Study, n_trials: Optional[int], max_trials: Optional[int]) -> Optional[int]:
    """The study-wide budget of workers that cannot share ``--n-trials`` tickets (a SLURM job array's tasks):
    ``--max-trials``, and ``--n-trials N`` as N more COMPLETE or PRUNED trials than the study has now,
    whichever comes first (``None``: no budget). A trial stopped and retried counts once."""
    targets = [] if max_trials is None else [max_trials]
    if n_trials is not None:
        targets.append(StudyBudget(n_trials).finished(study) + n_trials)
    return min(targets) if targets else None


class TrialGate:
    """What every loop checks around each trial: ``--max-trials``, ``--timeout`` and dead workers.

    Before a trial starts (:meth:`wait_for_room`), trials of dead workers on this host are failed
    (their retries queued) and the trial waits while the study-wide budget is taken by running
    trials. Once a trial has its number (:meth:`guard`), the process records itself as the
    trial's worker and the budget admits the trial, or ends it FAIL with :data:`OVER_BUDGET_ATTR`.
    As an Optuna study callback it stops ``study.optimize`` when no further trial may start.

    Args:
        max_trials: the study-wide budget (``None``: none).
        deadline: ``time.time()`` after which no trial starts (``None``: none).
    """

    def __init__(self, max_trials: Optional[int], deadline: Optional[float] = None) -> None:
        self.budget = None if max_trials is None else StudyBudget(max_trials)
        self.deadline = deadline

    def wait_for_room(self, study: optuna.Study, lock: Optional["AskLock"] = None) -> bool:
        """Wait until a new trial may start; ``False`` when the budget is spent or the deadline passed.

        With ``lock``, it is held when this returns ``True`` (the caller asks for the trial, then
        releases it), so that workers of this host take turns for the last places.
        """
        while self.deadline is None or time.time() < self.deadline:
            fail_orphaned_trials(study)
            if self.budget is not None and self.budget.reached(study):
                return False
            if lock is not None:
                lock.acquire()
            if self.budget is None or self.budget.has_room(study):
                return True
            if lock is not None:
                lock.release()
            fail_stale_trials(study)
            time.sleep(BUDGET_POLL_SECONDS)
        return False

    def guard(
        self, objective: Callable[[optuna.Trial], float], lock: Optional["AskLock"] = None
    ) -> Callable[[optuna.Trial], float]:
        """``objective`` as the loop runs it: record the worker, release ``lock``, admit the trial."""

        def guarded(trial: optuna.Trial) -> float:
            record_worker(trial)
            if lock is not None:
                lock.release()
            resume_interrupts()  # the trial is known to be this process's: an interruption fails it
            if self.budget is not None and not self.budget.admits(trial.study, trial.number):
                trial.set_user_attr(
                    OVER_BUDGET_ATTR,
                    f"not run: another worker took the last place of --max-trials {self.budget.max_trials} first",
                )
                raise OverBudget()
            return objective(trial)

        return guarded

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """After each trial of ``study.optimize``: stop it when no further trial may start."""
        if not self.wait_for_room(study):
            study.stop()
        defer_interrupts()  # until the next trial records its worker


class TrialTickets:
    """``--n-trials``: how many trials one command may still start, shared by its workers.

    Args:
        n_trials: the total; ``None`` for no limit.
        context: the multiprocessing context the workers are started with.
    """

    def __init__(self, n_trials: Optional[int], context: Any = None) -> None:
        context = context or multiprocessing.get_context()
        self._left = None if n_trials is None else context.Value("i", n_trials)

    def take(self) -> bool:
        """Take one ticket; ``False`` when none is left."""
        if self._left is None:
            return True
        with self._left.get_lock():
            if self._left.value <= 0:
                return False
            self._left.value -= 1
            return True


class AskLock:
    """Lets one process of this host at a time check the budget and ask for a trial.

    An advisory lock on a file in the temporary directory, named after the storage URL and
    study; the kernel releases it when its holder dies, so a killed worker never blocks others.
    :meth:`release` may be called more than once: the objective releases it as soon as
    ``study.optimize`` has asked for the trial, the worker loop again in case no trial started.
    :meth:`remove` deletes the file when a worker is done and no other process holds it; a
    process that was waiting on the deleted file notices and locks the new one.

    Args:
        storage: the storage URL.
        study_name: the study's name.
    """

    def __init__(self, storage: str, study_name: str) -> None:
        key = hashlib.sha1(f"{storage}\0{study_name}".encode()).hexdigest()[:16]
        self.path = os.path.join(tempfile.gettempdir(), f"allennlp_optuna-{key}.lock")
        self._file: Optional[IO[str]] = None

    def acquire(self) -> None:
        """Wait for the lock."""
        while self._file is None:
            file = open(self.path, "a")
            fcntl.flock(file, fcntl.LOCK_EX)
            if self._is_current(file):
                self._file = file
            else:  # removed while this process waited: lock the file that is there now
                file.close()

    def release(self) -> None:
        """Release the lock if this process holds it."""
        if self._file is not None:
            self._file.close()  # closing the file releases the lock
            self._file = None

    def remove(self) -> None:
        """Delete the lock file, unless another process holds it (that one removes it later)."""
        self.release()
        with open(self.path, "a") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            if self._is_current(file):
                os.remove(self.path)

    def _is_current(self, file: IO[str]) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(file.fileno()).st_ino
        except FileNotFoundError:
            return False
