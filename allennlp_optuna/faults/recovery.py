"""Surviving crashed workers: heartbeats, orphaned trials, retries with the same parameters.

A worker that dies mid-trial (SIGKILL, OOM killer, preemption) leaves its trial RUNNING.
Two mechanisms end such a trial as FAIL and queue a retry with the same parameters:

* Optuna's storage heartbeat: every running trial records a heartbeat each
  ``heartbeat_interval`` seconds; any worker, on any machine, fails trials whose heartbeat is
  older than the grace period before it starts its next trial.
* Worker identity: each trial records the process that runs it (:data:`WORKER_ATTR`, see
  :mod:`allennlp_optuna.faults.identity`: kernel boot id and pid namespace, not the host name); a
  worker that can see that process sees at once that it is gone, without waiting for the grace
  period (:func:`fail_orphaned_trials`).

A journal file has no heartbeat of Optuna's own; :class:`~allennlp_optuna.faults.heartbeat.HeartbeatJournalStorage`
gives it one. A trial that SLURM stopped with a signal is failed by its own worker, which queues
its retry at once (:mod:`allennlp_optuna.faults.preemption`).

Either way :class:`RetryCallback` (Optuna's ``RetryHeartbeatStaleTrialCallback``) enqueues a
WAITING copy of the trial's parameters; the next trial any worker asks for is that retry, and
:func:`retried_trial_number` tells which trial it retries. The retry trains in its own new
``trial_M`` directory; the failed trial's directory is left as it was.
"""
import copy
import logging
import warnings
from typing import Any, List, Optional

import optuna
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.core.compat import (
    RetryCallbackBase,
    stale_trial_callback,
    stale_trial_callback_argument,
    study_storage,
    trial_id,
)
from allennlp_optuna.faults.heartbeat import HeartbeatJournalStorage
from allennlp_optuna.faults.identity import WorkerIdentity, has_ended, is_this_process, same_process_space, this_process
from allennlp_optuna.faults.reconnect import rdb_storage_for
from allennlp_optuna.study.settings import DEFAULT_HEARTBEAT_INTERVAL
from allennlp_optuna.study.storage import engine_options, journal_file
from allennlp_optuna.core.trial_attrs import (
    FAIL_REASON_ATTR,
    HEARTBEAT_ATTR,
    PREEMPTED_ATTR,
    RESUMED_ATTR,
    SERIALIZATION_DIR_ATTR,
    WORKER_ATTR,
)

logger = logging.getLogger(__name__)


# Attributes of a failed trial that must not carry over to its retry: the retry records its
# own worker, heartbeats and directory, and was not stopped (yet).
_NOT_INHERITED_USER_ATTRS = (SERIALIZATION_DIR_ATTR, FAIL_REASON_ATTR, RESUMED_ATTR, PREEMPTED_ATTR)
_NOT_INHERITED_SYSTEM_ATTRS = (WORKER_ATTR, HEARTBEAT_ATTR)


class RetryCallback(RetryCallbackBase):  # type: ignore[misc, valid-type]
    """Optuna's retry callback, leaving out the failed trial's worker, heartbeat and directory.

    Args:
        max_retry: how many times one trial's parameters are retried (``None``: no limit).
    """

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        retry = copy.deepcopy(trial)
        retry.system_attrs = {k: v for k, v in trial.system_attrs.items() if k not in _NOT_INHERITED_SYSTEM_ATTRS}
        retry.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in _NOT_INHERITED_USER_ATTRS}
        if PREEMPTED_ATTR in trial.user_attrs:
            logger.warning("Trial %d was stopped by %s from SLURM; it is FAIL and will be retried from its last "
                           "checkpoint.", trial.number, trial.user_attrs[PREEMPTED_ATTR])
        else:
            logger.warning("Trial %d was left RUNNING by a dead worker; it is FAIL now and will be retried.",
                           trial.number)
        super().__call__(study, retry)


def retried_trial_number(trial: FrozenTrial) -> Optional[int]:
    """The number of the failed trial that ``trial`` retries, or ``None`` if it is no retry."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryCallbackBase.retried_trial_number(trial)


def recoverable_storage(
    url: str,
    heartbeat_interval: Optional[int] = DEFAULT_HEARTBEAT_INTERVAL,
    max_retry: Optional[int] = 3,
) -> optuna.storages.BaseStorage:
    """The storage as workers and training processes open it: running trials send heartbeats,
    and stale ones are retried.

    A database (SQLite, PostgreSQL, MySQL) is an ``RDBStorage`` that waits out outages
    (:func:`~allennlp_optuna.faults.reconnect.rdb_storage_for`); a journal file a
    :class:`~allennlp_optuna.faults.heartbeat.HeartbeatJournalStorage`.

    Args:
        url: the ``--storage``: a SQLAlchemy URL, e.g. ``postgresql://user:password@host/db``, or a
            journal file (``study.log``, ``journal:PATH``).
        heartbeat_interval: seconds between heartbeats; a trial silent for twice as long is
            failed and retried by whichever worker starts a trial next (``None``: no heartbeats,
            as a training process that only reports to its trial needs).
        max_retry: how many times one trial's parameters are retried.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryCallback(max_retry=max_retry)
        if journal_file(url) is not None:
            return HeartbeatJournalStorage(url, heartbeat_interval, retry)
        return rdb_storage_for(url, engine_kwargs=engine_options(url), heartbeat_interval=heartbeat_interval,
                               **{stale_trial_callback_argument(): retry})


def this_worker() -> WorkerIdentity:
    """The identity recorded on each trial (see :mod:`allennlp_optuna.faults.identity`)."""
    return this_process()


def record_worker(trial: optuna.Trial) -> None:
    """Record on ``trial`` that this process runs it."""
    trial.storage.set_trial_system_attr(trial_id(trial), WORKER_ATTR, this_worker())


def is_orphaned(trial: FrozenTrial) -> bool:
    """Whether ``trial`` is RUNNING but its worker, a process this one can see, has ended.

    The worker is looked up only in this process space (same kernel boot, same pid namespace);
    a trial of another machine or container, even one with the same host name, is left to its
    heartbeat.
    """
    worker = trial.system_attrs.get(WORKER_ATTR)
    if trial.state != TrialState.RUNNING or not isinstance(worker, dict):
        return False
    if not same_process_space(worker):
        return False  # another machine's (or container's) process: only its heartbeat can tell
    return has_ended(worker)


def fail_orphaned_trials(study: optuna.Study, cause: str = "") -> List[int]:
    """Fail the trials whose worker process on this host has died, and queue their retries.

    This is :func:`optuna.storages.fail_stale_trials` without the wait for the grace period.
    When two workers find the same orphan, the storage lets only one of them fail it.

    Args:
        study: the study to clean up.
        cause: what ended the workers, if known; it opens the trials' ``fail_reason``.

    Returns:
        The numbers of the trials this call failed.
    """
    storage = study_storage(study)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_orphaned(trial):
            continue
        worker = trial.system_attrs.get(WORKER_ATTR, {})
        reason = f"{cause}worker process {worker.get('pid')} on {worker.get('host')} died while the trial ran"
        if not _fail(storage, trial, reason):
            continue  # another worker failed it first
        failed.append(trial.number)
        callback = stale_trial_callback(storage)
        if callback is not None:
            callback(study, copy.deepcopy(storage.get_trial(trial_id(trial))))
        else:
            logger.warning("Trial %d was left RUNNING by a dead worker; it is FAIL now.", trial.number)
    return failed


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail (and queue retries of) trials whose heartbeat stopped: Optuna's ``fail_stale_trials``, quietly.

    Optuna calls it before each trial it starts; a worker waiting for room in the budget calls it
    too, since the trials taking the room may be the stale ones.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def fail_trials_of_this_process(study: optuna.Study) -> List[int]:
    """Fail the trials this process still has RUNNING (on Ctrl-C / SIGTERM); no retry.

    Returns:
        The numbers of the trials this call failed.
    """
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.system_attrs.get(WORKER_ATTR)
        if isinstance(worker, dict) and is_this_process(worker):
            reason = "KeyboardInterrupt: stopped by Ctrl-C or SIGTERM; rerun tune with --skip-if-exists to resume"
            if _fail(study_storage(study), trial, reason):
                failed.append(trial.number)
    return failed


def _fail(storage: Any, trial: FrozenTrial, reason: str) -> bool:
    """Record a RUNNING trial as FAIL with ``reason``; ``False`` if it had finished meanwhile."""
    try:
        if FAIL_REASON_ATTR not in trial.user_attrs:
            storage.set_trial_user_attr(trial_id(trial), FAIL_REASON_ATTR, reason)
        return bool(storage.set_trial_state_values(trial_id(trial), state=TrialState.FAIL))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False

