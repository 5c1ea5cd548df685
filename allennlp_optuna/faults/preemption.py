"""SLURM taking a node back: the running trial is stopped, failed, and retried from its checkpoint at once.

Inside a SLURM job, SIGTERM means that SLURM ends the job: a preemption, ``scontrol requeue``,
``scancel``, or the time limit (SIGKILL follows ``KillWait`` seconds later, 30 by default);
SIGUSR1 is the warning ahead of the time limit that ``--signal=B:USR1@SECONDS`` asks for. A
worker cannot tell these apart, and needs not: each time it stops its trial (:class:`Preempted`,
a ``KeyboardInterrupt``, so AllenNLP and Optuna end the training and record the trial as FAIL as
on Ctrl-C), the trial records the signal (:data:`PREEMPTED_ATTR`) and its own worker queues the
retry with the same parameters (:func:`retry_preempted_trials`), without waiting for a heartbeat
to go stale. Whichever worker asks for a trial next (another task, or this one once SLURM has
requeued it) takes the retry first, and it continues from the last epoch checkpoint the stopped
trial left (:mod:`allennlp_optuna.faults.resume`); the FAIL trial does not count in
``--max-trials``, so the trial counts once. Outside SLURM, SIGTERM stays what it was: a stop
like Ctrl-C, no retry.
"""
import os
import signal
from typing import List, Tuple

import optuna
from optuna.trial import TrialState

from allennlp_optuna.core.compat import retry_history, stale_trial_callback, study_storage
from allennlp_optuna.core.trial_attrs import PREEMPTED_ATTR, WORKER_ATTR
from allennlp_optuna.faults.identity import is_this_process


class Preempted(KeyboardInterrupt):
    """SLURM signalled this worker: its trial ends as FAIL and is retried from its checkpoint.

    Args:
        signal_name: the signal's name, ``SIGTERM`` or ``SIGUSR1``.
    """

    def __init__(self, signal_name: str) -> None:
        super().__init__(preempted_message(signal_name))
        self.signal_name = signal_name


def preempted_message(signal_name: str) -> str:
    """Why a trial that SLURM stopped failed (its ``fail_reason``)."""
    return (f"stopped by {signal_name} from SLURM (preemption, requeue, scancel or time limit); "
            "retried from its last checkpoint")


def in_slurm_job() -> bool:
    """Whether this process runs inside a SLURM job (``SLURM_JOB_ID`` is set by SLURM for its processes)."""
    return "SLURM_JOB_ID" in os.environ


def preemption_signals() -> Tuple[signal.Signals, ...]:
    """The signals that mean SLURM takes the node: SIGTERM and SIGUSR1 inside a SLURM job, none elsewhere."""
    return (signal.SIGTERM, signal.SIGUSR1) if in_slurm_job() else ()


def retry_preempted_trials(study: optuna.Study) -> List[int]:
    """Queue the retry of each trial that this process ran and a signal from SLURM stopped.

    Such a trial is FAIL with :data:`PREEMPTED_ATTR` (Optuna recorded it, see :class:`Preempted`);
    its retry is the storage's stale-trial callback, as for a dead worker's trial. A trial that
    already has its retry is left alone.

    Returns:
        The numbers of the trials whose retries this call queued.
    """
    callback = stale_trial_callback(study_storage(study))
    trials = study.get_trials(deepcopy=False)
    retried = {number for trial in trials for number in retry_history(trial)}
    queued = []
    for trial in trials:
        worker = trial.system_attrs.get(WORKER_ATTR)
        stopped = trial.state == TrialState.FAIL and PREEMPTED_ATTR in trial.user_attrs
        if stopped and isinstance(worker, dict) and is_this_process(worker) and trial.number not in retried:
            if callback is not None:
                callback(study, trial)
                queued.append(trial.number)
    return queued
