"""One rule for the best trial, the same wherever a user sees it: the console, the summary,
`allennlp best-params` and the report. Pruned, failed, infeasible and NaN-valued trials are never
the best; of equal values the earliest trial is."""
import json
import math
from pathlib import Path
from typing import List

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from allennlp_optuna.core.trial_attrs import CONSTRAINT_VALUES_ATTR, CONSTRAINTS_ATTR, METRIC_ATTR, SAMPLING_ATTR
from allennlp_optuna.output.report import render_report
from allennlp_optuna.output.summary import summarize
from allennlp_optuna.output.view import StudyDescription, StudyView
from allennlp_optuna.study.constraints import Constraints
from allennlp_optuna.study.objectives import Objectives
from allennlp_optuna.study.record import StoredStudy, best_trial, pareto_front
from allennlp_optuna.study.samplers import plan_sampler
from tests.conftest import run_cli

DISTRIBUTIONS = {"x": FloatDistribution(0, 1)}


def trial(value: float, state: TrialState = TrialState.COMPLETE, num_parameters: float = 50) -> FrozenTrial:
    attrs = {CONSTRAINT_VALUES_ATTR: {"num_parameters": num_parameters}} if state == TrialState.COMPLETE else {}
    return create_trial(
        params={"x": value}, distributions=DISTRIBUTIONS, state=state, user_attrs=attrs,
        value=None if state == TrialState.FAIL else value,
        intermediate_values={0: value} if state == TrialState.PRUNED else None,
    )


@pytest.fixture
def every_kind(workdir: Path) -> optuna.Study:
    """Trial 1 has the best value but breaks the constraint, 2 was pruned higher still, 3 and 4 tie: 3 is the best."""
    study = optuna.create_study(study_name="kinds", storage="sqlite:///kinds.db", direction="maximize")
    study.set_user_attr(METRIC_ATTR, "best_validation_accuracy")
    study.set_user_attr(CONSTRAINTS_ATTR, ["num_parameters<=100"])
    for frozen in [trial(0.7), trial(0.95, num_parameters=500), trial(0.99, TrialState.PRUNED), trial(0.8),
                   trial(0.8), trial(0.5, TrialState.FAIL)]:
        study.add_trial(frozen)
    return study


def test_every_view_of_a_study_names_the_same_best_trial(every_kind: optuna.Study, capsys: pytest.CaptureFixture) -> None:
    stored = StoredStudy.read(every_kind)
    assert stored.best_trial().number == 3

    assert "Best trial: 3, best_validation_accuracy = 0.8" in summarize(every_kind).splitlines()
    assert "<li>Best trial: 3, best_validation_accuracy = 0.8</li>" in render_report(every_kind)
    description = StudyDescription("kinds", "sqlite:///kinds.db", stored.objectives, "TPESampler", "none", "r", "r/x",
                                   constraints=stored.constraints)
    view = StudyView(description, "validation_accuracy")
    view.update(every_kind.trials)
    assert "| best 0.8 (trial 3) |" in view.status_line(view.started)
    result = run_cli(["best-params", "--storage", "sqlite:///kinds.db", "--format", "json"], capsys)
    assert result.code == 0, result
    assert result.out.strip() == '{"x": 0.8}'
    assert "Best trial 3 of study 'kinds': best_validation_accuracy = 0.8" in result.err


def with_values(frozen: FrozenTrial, values: List[float]) -> FrozenTrial:
    frozen.values = values
    return frozen


def test_a_nan_value_is_never_the_best_nor_on_the_pareto_front() -> None:
    minimize = Objectives.parse("best_validation_loss")
    trials = [with_values(trial(0.4), [math.nan]), trial(0.6)]
    for number, frozen in enumerate(trials):
        frozen.number = number

    assert best_trial(trials, minimize, Constraints()).number == 1
    two = Objectives.parse("best_validation_loss,num_parameters")
    front = pareto_front([with_values(t, [v, 10.0]) for t, v in zip(trials, [math.nan, 0.6])], two, Constraints())
    assert [t.number for t in front] == [1]


def test_a_study_with_several_objectives_has_no_single_best_trial(every_kind: optuna.Study) -> None:
    two = Objectives.parse("best_validation_accuracy,num_parameters", "maximize,minimize")
    assert best_trial(every_kind.trials, two, Constraints()) is None


@pytest.mark.parametrize("file, multi, line", [
    (None, False, "Sampler TPESampler, pruner none (allennlp-optuna's defaults)"),
    ({"sampler": {"type": "RandomSampler", "attributes": {"seed": 1}}}, False,
     "Sampler RandomSampler, pruner none (pruner: allennlp-optuna's default)"),
    ({"pruner": {"type": "MedianPruner", "attributes": {}}}, False,
     "Sampler TPESampler, pruner MedianPruner (sampler: allennlp-optuna's default)"),
    ({"sampler": {"type": "TPESampler", "attributes": {}}, "pruner": {"type": "HyperbandPruner", "attributes": {}}},
     False, "Sampler TPESampler, pruner HyperbandPruner"),
    ({"pruner": {"type": "MedianPruner", "attributes": {}}}, True,
     "Sampler TPESampler, pruner none (sampler: allennlp-optuna's default)"),
], ids=["no file", "sampler only", "pruner only", "both", "several objectives"])
def test_the_summary_says_which_sampler_and_pruner_ran(tmp_path: Path, file, multi: bool, line: str) -> None:
    path = None
    if file is not None:
        path = tmp_path / "optuna.json"
        path.write_text(json.dumps(file))
    settings = plan_sampler(None if path is None else str(path), multi, Constraints())
    study = optuna.create_study(directions=["maximize", "minimize"] if multi else ["maximize"])
    study.set_user_attr(SAMPLING_ATTR, settings.describe(multi))

    assert summarize(study).splitlines()[1] == line
