"""Several objectives: `--metrics a,b`, the Pareto front in best-params, retrain and the report."""
import csv
import json
from pathlib import Path
from typing import Dict, List

import optuna
import pytest
import torch

from allennlp_optuna.study.objectives import Objectives, metric_value
from allennlp_optuna.output.report import write_report
from tests.conftest import CONFIG, HPARAMS, assert_command_refused, read_json, run_cli, run_cli_process, write_json

KEYS = ["best_validation_accuracy", "num_parameters"]


class ParetoStudy:
    """A finished two-objective study (accuracy up, parameter count down) of 6 trials."""

    def __init__(self, root: Path, result: "object") -> None:
        self.root = root
        self.storage = f"sqlite:///{root / 'pareto.db'}"
        self.result = root / "result"
        self.tune = result

    def load(self) -> optuna.Study:
        return optuna.load_study(study_name="classifier", storage=self.storage)

    def metrics(self) -> Dict[int, dict]:
        return {t.number: read_json(self.result / f"trial_{t.number}" / "metrics.json") for t in self.load().trials}


@pytest.fixture(scope="module")
def pareto_study(tmp_path_factory: pytest.TempPathFactory) -> ParetoStudy:
    root = tmp_path_factory.mktemp("pareto")
    (root / ".allennlp_plugins").write_text("allennlp_optuna\n")
    optuna_json = write_json(root / "optuna.json", {
        "sampler": {"type": "TPESampler", "attributes": {"seed": 3, "n_startup_trials": 4}},
        "pruner": {"type": "MedianPruner", "attributes": {}},
    })
    result = run_cli_process(
        ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", "sqlite:///pareto.db",
         "--metrics", ",".join(KEYS), "--n-trials", "6", "--optuna-param-path", str(optuna_json)],
        root,
    )
    assert result.code == 0, result
    return ParetoStudy(root, result)


def non_dominated(values: Dict[int, List[float]]) -> List[int]:
    """Trials no other trial beats on both objectives (accuracy up, parameters down), from scratch."""
    def beats(a: List[float], b: List[float]) -> bool:
        return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])

    return sorted(n for n, v in values.items() if not any(beats(w, v) for m, w in values.items() if m != n))


def test_the_pareto_front_is_the_non_dominated_trials_of_metrics_json(
    pareto_study: ParetoStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    metrics = pareto_study.metrics()
    from_files = {n: [m["best_validation_accuracy"], m["num_parameters"]] for n, m in metrics.items()}
    study = pareto_study.load()

    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert {t.number: t.values for t in study.trials} == from_files
    result = run_cli(["best-params", "--storage", pareto_study.storage, "--format", "json"], capsys)
    assert result.code == 0, result
    front = json.loads(result.out)
    assert [entry["number"] for entry in front] == non_dominated(from_files)
    assert front == [{"number": n, "values": from_files[n], "params": study.trials[n].params} for n in non_dominated(from_files)]


def test_num_parameters_is_the_trained_models_trainable_parameter_count(pareto_study: ParetoStudy) -> None:
    for number, metrics in pareto_study.metrics().items():
        weights = torch.load(pareto_study.result / f"trial_{number}" / "best.th", map_location="cpu")
        assert metrics["num_parameters"] == sum(tensor.numel() for tensor in weights.values())


def test_a_configured_pruner_is_warned_about_once_and_trials_train_every_epoch(pareto_study: ParetoStudy) -> None:
    warnings = [line for line in pareto_study.tune.err.splitlines() if "does not prune multi-objective" in line]
    assert len(warnings) == 1
    assert warnings[0].endswith(
        "Optuna does not prune multi-objective trials: the MedianPruner is not used and every trial trains all "
        "its epochs ('optuna_pruner' callbacks are removed from the trials' configs)."
    )
    for trial in pareto_study.load().trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert pareto_study.metrics()[trial.number]["epoch"] == 2  # three epochs, numbered from 0


def test_tune_prints_the_pareto_front_as_its_summary(pareto_study: ParetoStudy) -> None:
    study = pareto_study.load()
    front = sorted(study.best_trials, key=lambda t: t.number)
    out = pareto_study.tune.out.splitlines()
    start = out.index(
        "Study 'classifier' (maximize best_validation_accuracy, minimize num_parameters): 6 trials: 6 COMPLETE"
    )
    assert out[start + 1] == "Sampler TPESampler, pruner none"  # the file's; Optuna prunes no multi-objective trial
    assert out[start + 2] == f"Pareto front: {len(front)} trial{'' if len(front) == 1 else 's'} (allennlp best-params lists them)"
    for line, trial in zip(out[start + 3:], front):
        assert line.startswith(
            f"  trial {trial.number}: best_validation_accuracy={trial.values[0]:.6g} num_parameters={trial.values[1]:.6g} | "
        )


def test_best_params_prints_the_front_as_a_table(pareto_study: ParetoStudy, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    result = run_cli(["best-params", "--storage", pareto_study.storage], capsys)

    study = pareto_study.load()
    lines = result.out.splitlines()
    assert result.code == 0, result
    assert lines[0].split() == ["trial", *KEYS, "params"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [str(t.number), f"{t.values[0]:.6g}", f"{t.values[1]:.6g}"] for t in sorted(study.best_trials, key=lambda t: t.number)
    ]
    assert result.err.strip().splitlines()[-1] == "Pareto front of study 'classifier' (choose one with --trial)"


def test_one_trial_of_the_front_is_chosen_with_trial(
    pareto_study: ParetoStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    study = pareto_study.load()
    chosen = max(study.best_trials, key=lambda t: t.number)

    values = run_cli(["best-params", "--storage", pareto_study.storage, "--trial", str(chosen.number), "--format", "json"], capsys)
    config = run_cli(["best-params", str(CONFIG), "--storage", pareto_study.storage, "--trial", str(chosen.number)], capsys)
    refused = run_cli(["retrain", str(CONFIG), "-s", "retrained", "--storage", pareto_study.storage], capsys)
    retrained = run_cli(["retrain", str(CONFIG), "-s", "retrained", "--storage", pareto_study.storage,
                         "--trial", str(chosen.number)], capsys)

    assert json.loads(values.out) == chosen.params
    assert json.loads(config.out)["model"]["seq2vec_encoder"]["num_filters"] == chosen.params["num_filters"]
    front = ", ".join(str(t.number) for t in sorted(study.best_trials, key=lambda t: t.number))
    assert_command_refused(
        "retrain", refused,
        f"study 'classifier' has 2 objectives and no single best trial; choose one of its Pareto front ({front}) with --trial",
    )
    assert retrained.code == 0, retrained
    assert retrained.out.splitlines()[-2:] == [
        f"best_validation_accuracy = {chosen.values[0]} (trial {chosen.number}: {chosen.values[0]})",
        f"num_parameters = {int(chosen.values[1])} (trial {chosen.number}: {chosen.values[1]})",
    ]


def test_the_report_draws_the_pareto_front_and_the_csv_has_every_value(pareto_study: ParetoStudy, tmp_path: Path) -> None:
    study = pareto_study.load()
    write_report(study, str(tmp_path / "report.html"), csv_path=str(tmp_path / "trials.csv"))

    page = (tmp_path / "report.html").read_text()
    assert 'id="pareto-front"' in page
    assert 'id="history-0"' in page and 'id="history-1"' in page
    assert "<th>best_validation_accuracy</th><th>num_parameters</th>" in page
    with open(tmp_path / "trials.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(int(r["number"]), float(r["value_best_validation_accuracy"]), float(r["value_num_parameters"])) for r in rows] == [
        (t.number, *t.values) for t in study.trials
    ]


def test_joining_with_other_metrics_or_directions_is_refused(workdir: Path, storage: str, capsys: pytest.CaptureFixture) -> None:
    study = optuna.create_study(study_name="classifier", storage=storage, directions=["maximize", "minimize"])
    study.set_user_attr("metrics", ",".join(KEYS))
    argv = ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", storage, "--skip-if-exists", "--n-trials", "1"]

    directions = run_cli([*argv, "--metrics", ",".join(KEYS), "--direction", "maximize,maximize"], capsys)
    metrics = run_cli([*argv, "--metrics", "best_validation_accuracy,training_duration"], capsys)
    count = run_cli([*argv, "--metrics", ",".join(KEYS), "--direction", "maximize"], capsys)

    assert_command_refused(
        "tune", directions,
        "study 'classifier' was created to maximize,minimize, but --direction maximize,maximize was asked for",
    )
    assert_command_refused(
        "tune", metrics,
        "study 'classifier' optimizes best_validation_accuracy,num_parameters, not "
        "best_validation_accuracy,training_duration; pass --metrics best_validation_accuracy,num_parameters "
        "or choose another --study-name",
    )
    assert_command_refused(
        "tune", count,
        "--direction gives 1 direction(s) (maximize) for 2 --metrics key(s) "
        "(best_validation_accuracy,num_parameters); give one per key",
    )
    assert len(study.trials) == 0 and not (workdir / "result").exists()


def test_directions_are_inferred_per_key_and_durations_read_as_seconds() -> None:
    assert Objectives.parse("best_validation_accuracy,training_duration,num_parameters").directions == (
        "maximize", "minimize", "minimize")
    assert metric_value({"training_duration": "0:01:02.500000"}, "training_duration") == 62.5
    assert metric_value({"training_duration": "1 day, 0:00:01"}, "training_duration") == 86401.0
