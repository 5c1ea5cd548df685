"""Ctrl-C at any moment of a trial's start leaves no trial RUNNING."""
import os
import signal
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from allennlp_optuna.core.trial_attrs import WORKER_ATTR
from allennlp_optuna.parallel.budget import TrialGate
from allennlp_optuna.parallel.signals import defer_interrupts, ending_cleanly, resume_interrupts


class InterruptedWhileSampling(optuna.samplers.RandomSampler):
    """Ctrl-C arrives inside ``study.ask``: after the trial is created RUNNING, before it has parameters."""

    def before_trial(self, study, trial):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGINT)
        return None


def test_ctrl_c_inside_ask_fails_the_new_trial_instead_of_leaving_it_running(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", sampler=InterruptedWhileSampling())
    objective_ran = []

    with pytest.raises(KeyboardInterrupt):
        with ending_cleanly(study):
            defer_interrupts()
            try:
                study.optimize(TrialGate(None, None).guard(lambda trial: objective_ran.append(1) or 1.0), n_trials=1)
            finally:
                resume_interrupts()

    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL]
    assert WORKER_ATTR in trials[0].system_attrs and not objective_ran
