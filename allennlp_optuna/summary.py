"""The end-of-study summary: trials by state, and the best trial's value, params and directory."""
from collections import Counter
from typing import List, Optional, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.constraints import Constraints, best_feasible_trial, infeasible_note
from allennlp_optuna.objectives import format_values, is_multi_objective, pareto_front, study_objectives
from allennlp_optuna.trial_attrs import METRIC_ATTR, SERIALIZATION_DIR_ATTR, VALUES_STD_ATTR


def best_trial(study: optuna.Study) -> Optional[FrozenTrial]:
    """The best COMPLETE trial, or ``None`` when no trial has completed yet or the study has
    several objectives (it has a Pareto front instead, see :func:`~allennlp_optuna.objectives.pareto_front`).

    In a study with ``--constraint`` bounds, the best among the trials that satisfy them (``None``
    when none does), whatever the Optuna version: Optuna 3's ``study.best_trial`` ignores
    constraints, and Optuna 4's knows them only from samplers given a ``constraints_func``.
    """
    if is_multi_objective(study):
        return None
    constraints = Constraints.of_study(study)
    if constraints:
        return best_feasible_trial(study.get_trials(deepcopy=False), study.direction.name.lower(), constraints)
    try:
        return study.best_trial
    except ValueError:  # Optuna: no trial is completed yet
        return None


def format_params(params: dict) -> str:
    """``name=value`` pairs separated by spaces, in the order the trial sampled them."""
    return " ".join(f"{name}={value}" for name, value in params.items())


def count_states(trials: Sequence[FrozenTrial]) -> str:
    """Trials by state, e.g. ``"2 COMPLETE, 1 PRUNED"`` (empty when there are none)."""
    counts = Counter(t.state.name for t in trials)
    return ", ".join(f"{counts[s.name]} {s.name}" for s in TrialState if counts[s.name])


def summarize(study: optuna.Study, trials: Optional[Sequence[FrozenTrial]] = None) -> str:
    """A few lines describing the study, as printed at the end of ``allennlp tune``.

    Args:
        study: the study.
        trials: its trials, if the caller has just read them.
    """
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    if is_multi_objective(study):
        return summarize_pareto_front(study, trials)
    states = count_states(trials)
    metric = study.user_attrs.get(METRIC_ATTR, "value")
    lines: List[str] = [
        f"Study {study.study_name!r} ({study.direction.name.lower()} {metric}): "
        f"{len(trials)} trials: {states or 'none'}"
    ]
    constraints = Constraints.of_study(study)
    note = infeasible_note(constraints, trials)
    if note is not None:
        lines.append(note)
    best = best_trial(study)
    if best is None:
        complete = any(t.state == TrialState.COMPLETE for t in trials)
        lines.append("No completed trial satisfies the constraints." if complete else "No trial has completed yet.")
    else:
        lines.append(f"Best trial: {best.number}, {metric} = {best.value}")
        lines.append(f"Best params: {format_params(best.params)}")
        lines.append(f"Best trial's directory: {best.user_attrs.get(SERIALIZATION_DIR_ATTR, '(unknown)')}")
    return "\n".join(lines)


def summarize_pareto_front(study: optuna.Study, trials: Sequence[FrozenTrial]) -> str:
    """:func:`summarize` for a multi-objective study: its Pareto front, one trial a line."""
    objectives = study_objectives(study, study.user_attrs.get(METRIC_ATTR))
    lines = [f"Study {study.study_name!r} ({objectives.describe()}): {len(trials)} trials: {count_states(trials) or 'none'}"]
    note = infeasible_note(Constraints.of_study(study), trials)
    if note is not None:
        lines.append(note)
    front = pareto_front(study, trials)
    if not front:
        complete = any(t.state == TrialState.COMPLETE for t in trials)
        lines.append("No completed trial satisfies the constraints." if complete else "No trial has completed yet.")
        return "\n".join(lines)
    lines.append(f"Pareto front: {len(front)} trial{'' if len(front) == 1 else 's'} (allennlp best-params lists them)")
    for trial in front:
        values = format_values(objectives.keys, trial.values, trial.user_attrs.get(VALUES_STD_ATTR))
        lines.append(f"  trial {trial.number}: {values} | {format_params(trial.params)}")
    return "\n".join(lines)
