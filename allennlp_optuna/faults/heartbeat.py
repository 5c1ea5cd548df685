"""Heartbeats in a journal file: a worker that died on another node is found, and its trial retried.

Optuna keeps heartbeats only in database storages (``RDBStorage``): in a journal file, a trial
whose worker was killed on another machine would stay RUNNING for good, and the identity check
(:mod:`allennlp_optuna.faults.identity`) rightly refuses to judge a process of another machine.
:class:`HeartbeatJournalStorage` is a journal file with heartbeats: while a trial runs, Optuna's
own heartbeat thread writes ``time.time()`` into the trial's :data:`HEARTBEAT_ATTR` every
``heartbeat_interval`` seconds; a RUNNING trial whose last heartbeat is older than twice that is
stale, and Optuna's ``fail_stale_trials`` (which every worker calls before each trial) fails it and
calls the stale-trial callback, the retry (:class:`~allennlp_optuna.faults.recovery.RetryCallback`).

The heartbeat is a wall-clock time written by one machine and read by another, so the clocks of
the nodes must agree to well within the grace period (NTP keeps cluster nodes within
milliseconds; the default grace period is 120 s). Each heartbeat is one line in the journal.
"""
import time
from typing import Any, Callable, List, Optional

import optuna
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.core.compat import HeartbeatHooks, trial_id
from allennlp_optuna.core.trial_attrs import HEARTBEAT_ATTR
from allennlp_optuna.study.storage import JournalFileStorage

StaleTrialCallback = Callable[[optuna.Study, FrozenTrial], None]


class HeartbeatJournalStorage(JournalFileStorage, HeartbeatHooks):
    """A journal file whose running trials send heartbeats, as ``RDBStorage(heartbeat_interval=...)`` does.

    Args:
        storage: the ``--storage`` naming the journal file (``study.log``, ``journal:PATH``).
        heartbeat_interval: seconds between a running trial's heartbeats (``None``: no heartbeat).
        stale_trial_callback: called with each trial this storage's ``fail_stale_trials`` failed.
        grace_period: seconds without a heartbeat after which a trial is stale (default: twice the interval).
    """

    def __init__(self, storage: str, heartbeat_interval: Optional[int] = None,
                 stale_trial_callback: Optional[StaleTrialCallback] = None, grace_period: Optional[int] = None) -> None:
        super().__init__(storage)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period or (2 * heartbeat_interval if heartbeat_interval else None)
        self.stale_trial_callback = stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        """Record that the process running trial ``trial_id`` is alive (nothing once the trial has ended)."""
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except (optuna.exceptions.UpdateFinishedTrialError, KeyError):
            pass  # it ended between two heartbeats (another worker may have failed it)

    def stale_trial_ids(self, study_id: int) -> List[int]:
        """The RUNNING trials of the study whose last heartbeat is older than the grace period.

        A trial that has sent no heartbeat yet is not stale (as in ``RDBStorage``).
        """
        if self.grace_period is None:
            return []
        now = time.time()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        return [trial_id(trial) for trial in running if _silent_for(trial, now) > self.grace_period]

    def get_heartbeat_interval(self) -> Optional[int]:
        """Seconds between heartbeats, or ``None``."""
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Any:
        """The callback called with each trial found stale (the retry), or ``None``."""
        return self.stale_trial_callback


def _silent_for(trial: FrozenTrial, now: float) -> float:
    """Seconds since the trial's last heartbeat (0 for a trial that has sent none)."""
    beat = trial.system_attrs.get(HEARTBEAT_ATTR)
    return now - beat if isinstance(beat, (int, float)) else 0.0
