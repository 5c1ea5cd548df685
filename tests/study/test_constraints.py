"""`--constraint KEY<=NUMBER`: infeasible trials are recorded, shown as such and never the best."""
import csv
import json
import logging
from pathlib import Path
from typing import Dict, List

import optuna
import pytest
from optuna.trial import TrialState

from allennlp_optuna.core import compat
from allennlp_optuna.output.report import write_report
from allennlp_optuna.tuning import tune
from tests.conftest import (
    CONFIG,
    HPARAMS,
    assert_command_refused,
    read_json,
    restored_root_logging,
    run_cli,
    run_cli_process,
    write_json,
)
from tests.commands.test_bad_input import METRIC_CHOICES

CONSTRAINTS = ["num_parameters<=1000", "num_parameters>=300", "peak_worker_0_memory_MB<=100000"]
ENQUEUED = [  # num_parameters: 1314 (too many), 180 (too few), 390, 998
    {"embedding_dim": 16, "max_filter_size": 3, "num_filters": 8, "dropout": 0.0, "lr": 0.05, "optimizer": "adam"},
    {"embedding_dim": 4, "max_filter_size": 2, "num_filters": 2, "dropout": 0.0, "lr": 0.005, "optimizer": "sgd"},
    {"embedding_dim": 8, "max_filter_size": 2, "num_filters": 4, "dropout": 0.0, "lr": 0.05, "optimizer": "adam"},
    {"embedding_dim": 12, "max_filter_size": 3, "num_filters": 8, "dropout": 0.1, "lr": 0.02, "optimizer": "adam"},
]


def violations_from_files(metrics: dict) -> Dict[str, float]:
    """Each constraint's violation, computed from a trial's metrics.json by hand."""
    return {
        "num_parameters<=1000": metrics["num_parameters"] - 1000,
        "num_parameters>=300": 300 - metrics["num_parameters"],
        "peak_worker_0_memory_MB<=100000": metrics["peak_worker_0_memory_MB"] - 100000,
    }


class ConstrainedStudy:
    """A finished study of the 4 enqueued trials (accuracy up) under :data:`CONSTRAINTS`, tuned by the CLI."""

    def __init__(self, root: Path, tuned: "object") -> None:
        self.root = root
        self.storage = f"sqlite:///{root / 'constrained.db'}"
        self.result = root / "result"
        self.tune = tuned

    def load(self) -> optuna.Study:
        return optuna.load_study(study_name="classifier", storage=self.storage)

    def metrics(self) -> Dict[int, dict]:
        return {n: read_json(self.result / f"trial_{n}" / "metrics.json") for n in range(len(ENQUEUED))}

    def feasible(self) -> Dict[int, bool]:
        return {n: all(v <= 0 for v in violations_from_files(m).values()) for n, m in self.metrics().items()}


@pytest.fixture(scope="module")
def constrained(tmp_path_factory: pytest.TempPathFactory) -> ConstrainedStudy:
    root = tmp_path_factory.mktemp("constrained")
    (root / ".allennlp_plugins").write_text("allennlp_optuna\n")
    enqueued = [str(write_json(root / f"values_{i}.json", values)) for i, values in enumerate(ENQUEUED)]
    result = run_cli_process(
        ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", "sqlite:///constrained.db",
         "--metrics", "best_validation_accuracy", "--n-trials", "4",
         *(arg for path in enqueued for arg in ("--enqueue-trial", path)),
         *(arg for text in CONSTRAINTS for arg in ("--constraint", text))],
        root,
    )
    assert result.code == 0, result
    return ConstrainedStudy(root, result)


def test_each_trial_records_its_constrained_values_from_metrics_json(constrained: ConstrainedStudy) -> None:
    study = constrained.load()
    metrics = constrained.metrics()

    assert study.user_attrs["constraints"] == CONSTRAINTS
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert [t.params for t in study.trials] == ENQUEUED
    for trial in study.trials:
        files = metrics[trial.number]
        assert trial.user_attrs["constraint_values"] == {
            "num_parameters": files["num_parameters"], "peak_worker_0_memory_MB": files["peak_worker_0_memory_MB"],
        }
        if compat.TRIALS_TAKE_CONSTRAINTS:  # Optuna 5 keeps them on the trial (3 and 4: tests/test_compat.py)
            assert trial.constraints == violations_from_files(files)
    assert [metrics[n]["num_parameters"] for n in range(4)] == [1314, 180, 390, 998]
    assert constrained.feasible() == {0: False, 1: False, 2: True, 3: True}


def test_best_params_picks_the_best_feasible_trial_not_the_best_value(
    constrained: ConstrainedStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    study = constrained.load()
    feasible = constrained.feasible()
    best_value = max(study.trials, key=lambda t: t.value)
    best_feasible = max((t for t in study.trials if feasible[t.number]), key=lambda t: t.value)
    assert not feasible[best_value.number], "the fixture's most accurate trial must be one that violates a constraint"

    result = run_cli(["best-params", "--storage", constrained.storage, "--format", "json"], capsys)

    assert result.code == 0, result
    assert json.loads(result.out) == best_feasible.params
    assert result.err.strip().splitlines()[-2:] == [
        "Constraints num_parameters<=1000, num_parameters>=300, peak_worker_0_memory_MB<=100000: "
        "2 of 4 completed trials are infeasible (0, 1) and not considered",
        f"Best trial {best_feasible.number} of study 'classifier': best_validation_accuracy = {best_feasible.value}, "
        f"directory {constrained.result / f'trial_{best_feasible.number}'}",
    ]


def test_a_chosen_infeasible_trial_says_which_constraint_it_violates(
    constrained: ConstrainedStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    result = run_cli(["best-params", "--storage", constrained.storage, "--trial", "1"], capsys)

    trial = constrained.load().trials[1]
    assert result.code == 0, result
    assert result.err.strip().splitlines()[-1] == (
        f"Chosen trial 1 of study 'classifier': best_validation_accuracy = {trial.value}, directory "
        f"{constrained.result / 'trial_1'}; infeasible: num_parameters=180 violates num_parameters>=300"
    )


def test_tune_archives_and_retrain_trains_the_best_feasible_trial(
    constrained: ConstrainedStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    study = constrained.load()
    archived = [n for n in range(4) if (constrained.result / f"trial_{n}" / "model.tar.gz").exists()]

    result = run_cli(["retrain", str(CONFIG), "-s", "retrained", "--storage", constrained.storage], capsys)

    assert archived == [2]
    assert result.code == 0, result
    trial = study.trials[2]
    retrained = read_json(workdir / "retrained" / "metrics.json")
    assert result.out.splitlines()[-3:-1] == [
        f"best_validation_accuracy = {trial.value} (trial 2: {trial.value})",
        "num_parameters = 390 (trial 2: 390.0; constraint num_parameters<=1000, num_parameters>=300)",
    ]
    assert result.out.splitlines()[-1] == (
        f"peak_worker_0_memory_MB = {retrained['peak_worker_0_memory_MB']} "
        f"(trial 2: {trial.user_attrs['constraint_values']['peak_worker_0_memory_MB']}; "
        "constraint peak_worker_0_memory_MB<=100000)"
    )


def test_tune_prints_infeasible_trials_and_the_best_feasible_one(constrained: ConstrainedStudy) -> None:
    out = constrained.tune.out.splitlines()
    finished = {int(line.split()[1]): line for line in out if line.startswith("trial ") and " COMPLETE: " in line}

    assert out[0] == (
        "Study 'classifier' in sqlite:///constrained.db: maximize best_validation_accuracy subject to "
        "num_parameters<=1000, num_parameters>=300, peak_worker_0_memory_MB<=100000"
    )
    assert finished[0].endswith("s); infeasible: num_parameters=1314 violates num_parameters<=1000")
    assert finished[1].endswith("s); infeasible: num_parameters=180 violates num_parameters>=300")
    assert finished[2].endswith("s)") and finished[3].endswith("s)")
    done = next(line for line in out if line.startswith("done: "))
    assert done.endswith(f"(4 COMPLETE, 2 infeasible); best best_validation_accuracy={constrained.load().trials[2].value:.4g} (trial 2)")
    start = out.index("Study 'classifier' (maximize best_validation_accuracy): 4 trials: 4 COMPLETE")
    assert out[start + 1:start + 4] == [
        "Sampler TPESampler, pruner none (allennlp-optuna's defaults)",
        "Constraints num_parameters<=1000, num_parameters>=300, peak_worker_0_memory_MB<=100000: "
        "2 of 4 completed trials are infeasible (0, 1) and not considered",
        f"Best trial: 2, best_validation_accuracy = {constrained.load().trials[2].value}",
    ]


def test_the_csv_and_the_report_mark_infeasible_trials(constrained: ConstrainedStudy, tmp_path: Path) -> None:
    study = constrained.load()
    write_report(study, str(tmp_path / "report.html"), csv_path=str(tmp_path / "trials.csv"))

    with open(tmp_path / "trials.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0])[:9] == [
        "number", "state", "value", "feasible", "metric_num_parameters", "metric_peak_worker_0_memory_MB",
        "violation_num_parameters<=1000", "violation_num_parameters>=300", "violation_peak_worker_0_memory_MB<=100000",
    ]
    for row, metrics in zip(rows, constrained.metrics().values()):
        violations = violations_from_files(metrics)
        assert row["feasible"] == str(all(v <= 0 for v in violations.values()))
        assert float(row["metric_num_parameters"]) == metrics["num_parameters"]
        assert float(row["metric_peak_worker_0_memory_MB"]) == metrics["peak_worker_0_memory_MB"]
        assert {text: float(row[f"violation_{text}"]) for text in CONSTRAINTS} == violations
    assert [row["feasible"] for row in rows] == ["False", "False", "True", "True"]
    page = (tmp_path / "report.html").read_text()
    assert page.count('<tr class="enqueued infeasible">') == 2 and page.count('<tr class="enqueued">') == 2
    assert "<th>Feasible</th>" in page
    assert "2 of 4 completed trials are infeasible (0, 1) and not considered" in page


def constrained_pareto_study(root: Path, constraints: List[str], sampler: str = "TPESampler") -> optuna.Study:
    """The enqueued trials with two objectives (accuracy up, parameters down), through the Python API."""
    enqueued = [str(write_json(root / f"values_{i}.json", values)) for i, values in enumerate(ENQUEUED)]
    optuna_json = write_json(root / "optuna.json", {"sampler": {"type": sampler, "attributes": {"seed": 1}}})
    with restored_root_logging():
        return tune(str(CONFIG), str(HPARAMS), str(root / "result"), storage=f"sqlite:///{root / 'pareto.db'}",
                    metrics="best_validation_accuracy,num_parameters", n_trials=4, enqueue_trial=enqueued,
                    constraints=constraints, optuna_param_path=str(optuna_json))


def test_the_pareto_front_leaves_out_infeasible_trials(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    study = constrained_pareto_study(workdir, ["num_parameters>=300"])
    values = {t.number: t.values for t in study.trials}
    capsys.readouterr()  # tune's console

    result = run_cli(["best-params", "--storage", f"sqlite:///{workdir / 'pareto.db'}", "--format", "json"], capsys)

    # trial 1 (180 parameters, the fewest) would be on the front but violates num_parameters>=300
    assert values[1][1] == 180 and min(v[1] for v in values.values()) == 180
    assert result.code == 0, result
    front = json.loads(result.out)
    feasible = {n: v for n, v in values.items() if v[1] >= 300}
    expected = sorted(n for n, v in feasible.items() if not any(
        w[0] >= v[0] and w[1] <= v[1] and w != v for w in feasible.values()))
    assert front == [{"number": n, "values": values[n], "params": ENQUEUED[n],
                      "constraint_values": {"num_parameters": values[n][1]}} for n in expected]
    assert result.err.strip().splitlines()[-2] == (
        "Constraint num_parameters>=300: 1 of 4 completed trials is infeasible (1) and not considered"
    )
    write_report(study, str(workdir / "report.html"))
    page = (workdir / "report.html").read_text()
    pareto_plot = page[page.index('<section class="card" id="pareto-front">'):page.index('id="history-0"')]
    assert "Infeasible Trial" in pareto_plot  # Optuna greys trial 1 out


def test_no_feasible_trial_is_said_and_nothing_is_archived(
    workdir: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="allennlp_optuna.study.samplers"):
        study = constrained_pareto_study(workdir, ["num_parameters<=100"], sampler="RandomSampler")
    storage = f"sqlite:///{workdir / 'pareto.db'}"
    single = optuna.create_study(study_name="single", storage=storage, direction="maximize")
    single.set_user_attr("constraints", ["num_parameters<=100"])
    single.add_trial(optuna.trial.create_trial(value=0.8, user_attrs={"constraint_values": {"num_parameters": 390}}))
    capsys.readouterr()  # tune's console

    front = run_cli(["best-params", "--storage", storage, "--study-name", "classifier"], capsys)
    best = run_cli(["best-params", "--storage", storage, "--study-name", "single"], capsys)
    retrain = run_cli(["retrain", str(CONFIG), "-s", "retrained", "--storage", storage, "--study-name", "single"], capsys)

    assert [r.getMessage() for r in caplog.records if r.name == "allennlp_optuna.study.samplers"] == [
        "RandomSampler does not take constraints into account when it samples; trials that violate "
        "num_parameters<=100 are still recorded as infeasible and never chosen as the best."
    ]
    assert len(study.trials) == 4 and not list(workdir.glob("result/trial_*/model.tar.gz"))
    assert front.code == 0 and front.out.splitlines() == ["trial  best_validation_accuracy  num_parameters  params"]
    message = "study 'single' has no feasible trial: its one COMPLETE trial violates num_parameters<=100; choose one with --trial"
    assert_command_refused("best-params", best, message)
    assert_command_refused("retrain", retrain, message)
    assert "No completed trial satisfies the constraints." in (workdir / "result" / "report.html").read_text()


@pytest.mark.parametrize(
    "constraints, message",
    [
        (["x"], "--constraint must look like KEY<=NUMBER or KEY>=NUMBER, got 'x'"),
        (["num_parameters<5"], "--constraint must look like KEY<=NUMBER or KEY>=NUMBER, got 'num_parameters<5'"),
        (["<=5"], "--constraint must look like KEY<=NUMBER or KEY>=NUMBER, got '<=5'"),
        (["num_parameters<=many"], "--constraint 'num_parameters<=many': the bound must be a finite number, got 'many'"),
        (["num_parameters>=inf"], "--constraint 'num_parameters>=inf': the bound must be a finite number, got 'inf'"),
        (["num_parameters<=5", "num_parameters <= 5.0"], "--constraint num_parameters<=5 is given twice"),
    ],
    ids=["no operator", "strict operator", "no key", "no number", "infinite", "twice"],
)
def test_a_malformed_constraint_is_refused_before_anything_starts(
    constraints: List[str], message: str, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["tune", str(CONFIG), str(HPARAMS), "-s", "result", *(a for c in constraints for a in ("--constraint", c))]

    result = run_cli(argv, capsys)

    assert_command_refused("tune", result, message)
    assert not (workdir / "allennlp_optuna.db").exists() and not (workdir / "result").exists()


def test_a_constraint_key_training_never_reports_stops_the_study_after_the_first_epoch(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    result = run_cli(["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--n-trials", "3", "--skip-exception",
                      "--metrics", "best_validation_accuracy", "--constraint", "peak_memory_MB<=2000"], capsys)

    assert_command_refused(
        "tune", result,
        f"--constraint key 'peak_memory_MB' is not among the metrics of {Path('result', 'trial_0')} after epoch 0; "
        f"choose a --constraint key from: {METRIC_CHOICES}",
    )
    study = optuna.load_study(study_name="classifier", storage="sqlite:///allennlp_optuna.db")
    assert [t.state for t in study.trials] == [TrialState.FAIL]
    assert not (workdir / "result" / "trial_0" / "metrics.json").exists()
