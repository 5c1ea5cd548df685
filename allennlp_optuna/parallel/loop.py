"""The loops that run trials: Optuna's own ``study.optimize`` in this process (:func:`optimize_in_process`), or
one worker process's loop over a shared study (:func:`run_trials`).

Both check the budget, the deadline and dead workers' trials through one
:class:`~allennlp_optuna.parallel.budget.TrialGate`.
"""
import logging
import time
import warnings
from typing import Callable, Optional, Sequence, Tuple, Type

import optuna
from optuna.trial import FrozenTrial

from allennlp_optuna.parallel.budget import AskLock, OverBudget, TrialGate, TrialTickets
from allennlp_optuna.faults.recovery import recoverable_storage
from allennlp_optuna.study.settings import TuneSettings
from allennlp_optuna.study.samplers import OptunaSettings
from allennlp_optuna.parallel.signals import defer_interrupts, ending_cleanly, resume_interrupts

logger = logging.getLogger(__name__)


def open_worker_study(settings: TuneSettings, optuna_settings: OptunaSettings, reseed: bool) -> optuna.Study:
    """The study as one worker runs it: its own connection, with heartbeats and retries of stale trials.

    Args:
        settings: the run's settings, resolved (the study name is known).
        optuna_settings: the sampler and pruner.
        reseed: reseed the sampler, so that workers given the same seeded sampler do not sample alike.
    """
    study = optuna.load_study(
        study_name=settings.study_name,
        storage=recoverable_storage(settings.storage, settings.heartbeat_interval),
        sampler=optuna_settings.sampler,
        pruner=optuna_settings.pruner,
    )
    if reseed:
        study.sampler.reseed_rng()
    return study


def deadline_of(timeout: Optional[float]) -> Optional[float]:
    """``time.time()`` after which no trial starts, for ``--timeout`` seconds from now."""
    return None if timeout is None else time.time() + timeout


def optimize_in_process(
    settings: TuneSettings,
    objective: Callable[[optuna.Trial], float],
    optuna_settings: OptunaSettings,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
) -> None:
    """Run the trials in this process, one after another: Optuna's own ``study.optimize`` loop.

    The :class:`~allennlp_optuna.parallel.budget.TrialGate` wraps the objective and, as the last callback,
    stops the loop when ``--max-trials`` is reached; Ctrl-C and SIGTERM end the running trial
    as FAIL (:func:`ending_cleanly`).
    """
    study = open_worker_study(settings, optuna_settings, reseed=False)
    gate = TrialGate(settings.max_trials, deadline_of(settings.timeout))
    with ending_cleanly(study):
        if not gate.wait_for_room(study):
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            defer_interrupts()
            try:
                study.optimize(
                    gate.guard(objective),
                    n_trials=settings.n_trials,
                    timeout=settings.timeout,
                    catch=(*settings.catch, OverBudget),  # a trial that lost the race: the next one may fit
                    callbacks=[*callbacks, gate],
                )
            finally:
                resume_interrupts()


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    lock: AskLock,
    *,
    tickets: TrialTickets,
    gate: TrialGate,
    catch: Tuple[Type[Exception], ...] = (),
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
) -> None:
    """One worker process's loop: run trials until the tickets, the budget or the time run out.

    Each trial goes through ``study.optimize``, so Optuna records its state, heartbeat and
    logs as usual; workers of this host take turns (``lock``) for the budget check and the ask.

    Args:
        study: the study, opened on a storage with heartbeats.
        objective: the function to optimize.
        lock: serializes the budget check and ``ask`` with the other workers of this host.
        tickets: how many trials this command may still start (``--n-trials``).
        gate: ``--max-trials``, ``--timeout`` and dead workers' trials, before and at each trial.
        catch: exceptions recorded as FAIL without stopping.
        callbacks: Optuna study callbacks called after each trial.
    """
    guarded = gate.guard(objective, lock)
    while gate.wait_for_room(study, lock):
        try:
            if not tickets.take():
                return
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                defer_interrupts()
                study.optimize(guarded, n_trials=1, catch=catch, callbacks=list(callbacks))
        except OverBudget:
            continue
        finally:
            lock.release()
            resume_interrupts()

