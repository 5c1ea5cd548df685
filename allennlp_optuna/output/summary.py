"""The end of ``allennlp tune``: the study's summary (trials by state, the best trial or the Pareto front)
and the commands that use the study next."""
from typing import List, Optional, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.core.redaction import redact_url
from allennlp_optuna.core.trial_attrs import SERIALIZATION_DIR_ATTR, VALUES_STD_ATTR
from allennlp_optuna.output.formatting import count_states, format_params, format_values
from allennlp_optuna.study.constraints import infeasible_note
from allennlp_optuna.study.record import StoredStudy


def summarize(study: optuna.Study, trials: Optional[Sequence[FrozenTrial]] = None) -> str:
    """A few lines describing the study, as printed at the end of ``allennlp tune``.

    Args:
        study: the study.
        trials: its trials, if the caller has just read them.
    """
    return "\n".join(summary_lines(StoredStudy.read(study), trials))


def summary_lines(stored: StoredStudy, trials: Optional[Sequence[FrozenTrial]] = None) -> List[str]:
    """:func:`summarize`'s lines, for a study already read (the report shows them as a list)."""
    trials = stored.trials() if trials is None else trials
    lines: List[str] = [
        f"Study {stored.name!r} ({_objectives_text(stored)}): {len(trials)} trials: {count_states(trials) or 'none'}"
    ]
    note = infeasible_note(stored.constraints, trials)
    if note is not None:
        lines.append(note)
    lines += _pareto_front_lines(stored, trials) if stored.is_multi else _best_trial_lines(stored, trials)
    return lines


def _objectives_text(stored: StoredStudy) -> str:
    """``maximize best_validation_accuracy``; several objectives each with its direction."""
    if stored.is_multi:
        return stored.objectives.describe()
    return f"{stored.objectives.directions[0]} {stored.objectives.metrics}"


def _nothing_yet(trials: Sequence[FrozenTrial]) -> str:
    complete = any(t.state == TrialState.COMPLETE for t in trials)
    return "No completed trial satisfies the constraints." if complete else "No trial has completed yet."


def _best_trial_lines(stored: StoredStudy, trials: Sequence[FrozenTrial]) -> List[str]:
    best = stored.best_trial(trials)
    if best is None:
        return [_nothing_yet(trials)]
    return [
        f"Best trial: {best.number}, {stored.objectives.metrics} = {best.value}",
        f"Best params: {format_params(best.params)}",
        f"Best trial's directory: {best.user_attrs.get(SERIALIZATION_DIR_ATTR, '(unknown)')}",
    ]


def _pareto_front_lines(stored: StoredStudy, trials: Sequence[FrozenTrial]) -> List[str]:
    front = stored.pareto_front(trials)
    if not front:
        return [_nothing_yet(trials)]
    lines = [f"Pareto front: {len(front)} trial{'' if len(front) == 1 else 's'} (allennlp best-params lists them)"]
    for trial in front:
        values = format_values(stored.objectives.keys, trial.values, trial.user_attrs.get(VALUES_STD_ATTR))
        lines.append(f"  trial {trial.number}: {values} | {format_params(trial.params)}")
    return lines


def next_commands(study_name: str, storage: str, config_file: str, report: str) -> List[str]:
    """The last lines ``allennlp tune`` prints: the report's path and the commands that use the study next."""
    study = f"--study-name {study_name} --storage {redact_url(storage)}"
    return [
        f"Report: {report}",
        f"Best values:  allennlp best-params {study}",
        f"Retrain best: allennlp retrain {config_file} -s best_model {study}",
        f"New report:   allennlp tune-report {study} -o report.html",
    ]
