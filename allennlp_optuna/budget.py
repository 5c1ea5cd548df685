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
"""
import fcntl
import hashlib
import multiprocessing
import os
import tempfile
from typing import IO, Any, Optional

import optuna
from optuna.trial import TrialState

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
"""Trial states that use up the study-wide budget."""

RESERVED = (TrialState.RUNNING, TrialState.WAITING)
"""Trial states that may still use up the budget."""


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
