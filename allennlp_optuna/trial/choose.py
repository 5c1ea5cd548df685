"""Choosing one trial of a stored study, as ``best-params`` and ``retrain`` do: the best, or one by number.

When there is none to choose (no COMPLETE trial yet, none feasible, several objectives, a number
that does not exist), the reason is one ``ConfigurationError`` line saying what to do.
"""
from typing import Optional

from allennlp.common.checks import ConfigurationError
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.output.formatting import count_states
from allennlp_optuna.study.record import StoredStudy

RETRAINABLE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def require_best_trial(stored: StoredStudy) -> FrozenTrial:
    """The study's best trial (:func:`~allennlp_optuna.study.record.best_trial`); one line when there is none.

    A multi-objective study has no single best trial: the error lists its Pareto front, to
    choose one with ``--trial``. In a study with ``--constraint`` bounds the best trial is the best
    feasible one; when every completed trial violates a bound, the error says so.
    """
    name = stored.name
    if stored.is_multi:
        front = ", ".join(str(t.number) for t in stored.pareto_front()) or "none yet"
        raise ConfigurationError(
            f"study {name!r} has {len(stored.objectives.keys)} objectives and no single best trial; "
            f"choose one of its Pareto front ({front}) with --trial"
        )
    trials = stored.trials()
    trial = stored.best_trial(trials)
    if trial is not None:
        return trial
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:  # but none feasible
        texts = stored.constraints.texts
        n = len(complete)
        subject = "its one COMPLETE trial violates" if n == 1 else f"all {n} of its COMPLETE trials violate"
        bounds = texts[0] if len(texts) == 1 else f"one of {', '.join(texts)}"
        raise ConfigurationError(f"study {name!r} has no feasible trial: {subject} {bounds}; choose one with --trial")
    states = f": {count_states(trials)}" if trials else ""
    plural = "" if len(trials) == 1 else "s"
    raise ConfigurationError(
        f"study {name!r} has no COMPLETE trial yet ({len(trials)} trial{plural}{states}); "
        "run allennlp tune until a trial completes"
    )


def chosen_trial(stored: StoredStudy, trial_number: Optional[int] = None) -> FrozenTrial:
    """Trial ``trial_number`` of the study, or its best trial when ``None``.

    A chosen trial must have finished with all its values sampled (COMPLETE or PRUNED).
    """
    if trial_number is None:
        return require_best_trial(stored)
    trials = stored.trials()
    chosen = next((t for t in trials if t.number == trial_number), None)
    if chosen is None:
        numbers = f"0 to {trials[-1].number}" if trials else "none"
        raise ConfigurationError(
            f"study {stored.name!r} has no trial {trial_number}; its trials are numbered {numbers}"
        )
    if chosen.state not in RETRAINABLE_STATES:
        raise ConfigurationError(
            f"trial {trial_number} of study {stored.name!r} is {chosen.state.name}; "
            "choose a COMPLETE or PRUNED trial with --trial"
        )
    return chosen
