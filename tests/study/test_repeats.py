"""Repeated trials: `--seeds K` and `--repeat NAME=V1,V2` train runs whose mean is the trial's value."""
import csv
import json
import statistics
from pathlib import Path

import optuna
import pytest

from allennlp_optuna import AllenNLPExecutor
from allennlp_optuna.trial.callbacks.pruning import RepeatedRun
from allennlp_optuna.output.report import write_report
from allennlp_optuna.study.search_space import SearchSpace
from allennlp_optuna.tuning import tune
from tests.conftest import CONFIG, FIXTURES, HPARAMS, read_json, run_cli, run_cli_process, write_json
from tests.parallel.test_workers import postgres, unique_name  # noqa: F401 (postgres is a fixture)

RUNS = ["seed_0", "seed_1", "seed_2"]


class SeededStudy:
    """Two trials of `--seeds 3` optimizing best_validation_loss, with a pruner that never prunes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = f"sqlite:///{root / 'seeds.db'}"
        self.result = root / "result"

    def load(self) -> optuna.Study:
        return optuna.load_study(study_name="classifier", storage=self.storage)

    def run_metrics(self, number: int, run: str) -> dict:
        return read_json(self.result / f"trial_{number}" / run / "metrics.json")


@pytest.fixture(scope="module")
def seeded_study(tmp_path_factory: pytest.TempPathFactory) -> SeededStudy:
    seeded = SeededStudy(tmp_path_factory.mktemp("seeds"))
    never_prunes = write_json(seeded.root / "optuna.json", {
        "sampler": {"type": "TPESampler", "attributes": {"seed": 5}},
        "pruner": {"type": "ThresholdPruner", "attributes": {"upper": 1000.0}},
    })
    tune(str(CONFIG), str(HPARAMS), str(seeded.result), storage=seeded.storage, metrics="best_validation_loss",
         n_trials=2, seeds=3, optuna_param_path=str(never_prunes))
    return seeded


def test_each_trials_value_is_the_mean_of_its_three_runs_which_differ(seeded_study: SeededStudy) -> None:
    for trial in seeded_study.load().trials:
        losses = [seeded_study.run_metrics(trial.number, run)["best_validation_loss"] for run in RUNS]
        assert len(set(losses)) == 3
        assert trial.value == pytest.approx(statistics.fmean(losses), abs=1e-12)
        assert trial.user_attrs["runs"] == [{"run": run, "values": [loss]} for run, loss in zip(RUNS, losses)]
        assert trial.user_attrs["values_std"] == [pytest.approx(statistics.stdev(losses))]
        assert trial.user_attrs["serialization_dir"] == str(seeded_study.result / f"trial_{trial.number}")


def test_run_k_trains_with_the_configs_seeds_plus_k(seeded_study: SeededStudy) -> None:
    for k, run in enumerate(RUNS):
        config = read_json(seeded_study.result / "trial_0" / run / "config.json")
        assert [config["random_seed"], config["numpy_seed"], config["pytorch_seed"]] == [42 + k] * 3


def test_the_best_trials_first_run_is_archived(seeded_study: SeededStudy) -> None:
    best = seeded_study.load().best_trial
    archives = sorted(p.relative_to(seeded_study.result) for p in seeded_study.result.glob("**/model.tar.gz"))
    assert archives == [Path(f"trial_{best.number}") / "seed_0" / "model.tar.gz"]


def test_pruning_sees_the_mean_of_the_runs_that_reached_each_epoch(seeded_study: SeededStudy) -> None:
    trial = seeded_study.load().trials[0]
    epochs = {run: [read_json(seeded_study.result / "trial_0" / run / f"metrics_epoch_{e}.json")["validation_loss"]
                    for e in range(3)] for run in RUNS}
    expected = {k * 3 + e: statistics.fmean(epochs[run][e] for run in RUNS[: k + 1]) for k in range(3) for e in range(3)}
    assert sorted(trial.intermediate_values) == list(range(9))
    for step, value in expected.items():
        assert trial.intermediate_values[step] == pytest.approx(value, abs=1e-12)


def test_the_report_shows_mean_plus_minus_std(seeded_study: SeededStudy, tmp_path: Path) -> None:
    study = seeded_study.load()
    write_report(study, str(tmp_path / "report.html"), csv_path=str(tmp_path / "trials.csv"))

    page = (tmp_path / "report.html").read_text()
    assert "<th>Value (mean \u00b1 std)</th>" in page
    with open(tmp_path / "trials.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    for trial, row in zip(study.trials, rows):
        std = trial.user_attrs["values_std"][0]
        assert f"{trial.value:.6g} \u00b1 {std:.2g}</td>" in page
        assert (float(row["value"]), float(row["value_std"])) == (trial.value, std)
        assert json.loads(row["runs"]) == trial.user_attrs["runs"]


def test_retrain_reproduces_the_chosen_run_and_says_so(
    seeded_study: SeededStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    best = seeded_study.load().best_trial

    result = run_cli(["retrain", str(CONFIG), "-s", "again", "--storage", seeded_study.storage, "--seed-index", "1"], capsys)

    seed_1 = seeded_study.run_metrics(best.number, "seed_1")["best_validation_loss"]
    assert result.code == 0, result
    assert read_json(workdir / "again" / "metrics.json")["best_validation_loss"] == seed_1
    assert (f"Reproducing run seed_1 (--seed-index 1) of trial {best.number}'s 3 runs; the trial's value is their mean"
            in result.err)
    assert result.out.splitlines()[-1] == (
        f"best_validation_loss = {seed_1} (run seed_1 of trial {best.number}: {seed_1}, the trial's mean: {best.value})"
    )


def test_joining_with_other_seeds_is_refused(seeded_study: SeededStudy, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    result = run_cli(["tune", str(CONFIG), str(HPARAMS), "-s", str(seeded_study.result), "--storage", seeded_study.storage,
                      "--skip-if-exists", "--seeds", "2", "--n-trials", "1"], capsys)

    assert result.code == 2, result
    assert result.err.strip().splitlines()[-1] == (
        "allennlp tune: error: study 'classifier' repeats each trial with --seeds 3, not --seeds 2; "
        "pass the same flags or choose another --study-name"
    )


def fold_config(workdir: Path) -> Path:
    """The fixture config with `train_data_path` read from `train_<fold>.jsonl`, two folds of different lines."""
    lines = (FIXTURES / "data" / "train.jsonl").read_text().splitlines()
    (workdir / "train_0.jsonl").write_text("\n".join(lines[:40]) + "\n")
    (workdir / "train_1.jsonl").write_text("\n".join(lines[40:]) + "\n")
    config = workdir / "folds.jsonnet"
    config.write_text(
        f"(import '{CONFIG}') + {{ train_data_path: '{workdir}/train_' + std.extVar('fold') + '.jsonl' }}\n"
    )
    return config


def tokens_of(path: Path) -> set:
    return {token for line in path.read_text().splitlines() for token in json.loads(line)["text"].split()}


def test_each_fold_run_reads_its_own_folds_file(workdir: Path, storage: str) -> None:
    study = tune(str(fold_config(workdir)), str(HPARAMS), str(workdir / "result"), storage=storage,
                 metrics="best_validation_accuracy", n_trials=2, repeat="fold=0,1")

    for trial in study.trials:
        values = []
        for fold in ("0", "1"):
            run = workdir / "result" / f"trial_{trial.number}" / f"fold_{fold}"
            assert read_json(run / "config.json")["train_data_path"] == f"{workdir}/train_{fold}.jsonl"
            vocabulary = set((run / "vocabulary" / "tokens.txt").read_text().split()) - {"@@UNKNOWN@@"}
            assert vocabulary == tokens_of(workdir / f"train_{fold}.jsonl")
            values.append(read_json(run / "metrics.json")["best_validation_accuracy"])
        assert trial.value == pytest.approx(statistics.fmean(values), abs=1e-12)
        assert [r["run"] for r in trial.user_attrs["runs"]] == ["fold_0", "fold_1"]


def test_the_executor_averages_seeds_of_several_objectives_and_reads_durations_as_seconds(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])

    def objective(trial: optuna.Trial) -> list:
        SearchSpace.from_file(str(HPARAMS)).suggest(trial)
        executor = AllenNLPExecutor(trial, str(CONFIG), str(tmp_path / f"trial_{trial.number}"),
                                    metrics="best_validation_accuracy,training_duration", seeds=2,
                                    overrides={"trainer.num_epochs": 1})
        return executor.run()

    study.optimize(objective, n_trials=1)

    trial = study.trials[0]
    runs = [read_json(tmp_path / "trial_0" / run / "metrics.json") for run in ("seed_0", "seed_1")]
    durations = []
    for metrics in runs:
        hours, minutes, seconds = metrics["training_duration"].split(":")
        durations.append(int(hours) * 3600 + int(minutes) * 60 + float(seconds))
    assert trial.values == pytest.approx(
        [statistics.fmean(m["best_validation_accuracy"] for m in runs), statistics.fmean(durations)], abs=1e-12
    )


def test_a_run_reports_the_mean_of_the_runs_that_reached_the_epoch(tmp_path: Path) -> None:
    for run, loss in (("seed_0", 0.5), ("seed_1", 0.7)):
        (tmp_path / run).mkdir()
        write_json(tmp_path / run / "metrics_epoch_1.json", {"validation_loss": loss})
    (tmp_path / "seed_2").mkdir()  # stopped before epoch 1

    repeated = RepeatedRun([str(tmp_path / r) for r in ("seed_0", "seed_1", "seed_2")], step_offset=9)

    assert repeated.mean_with_earlier("validation_loss", 0.9, epoch=1) == pytest.approx(0.7)
    assert repeated.mean_with_earlier("validation_loss", 0.9, epoch=2) == 0.9


def test_parallel_workers_on_postgresql_run_enqueued_repeated_multi_objective_trials_within_max_trials(
    workdir: Path, postgres: str
) -> None:
    name = unique_name()
    baseline = write_json(workdir / "baseline.json", {"embedding_dim": 8, "max_filter_size": 2, "num_filters": 4,
                                                      "dropout": 0.1, "lr": 0.05, "optimizer": "adam"})
    result = run_cli_process(
        ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", postgres, "--study-name", name,
         "--metrics", "best_validation_accuracy,num_parameters", "--seeds", "2", "--n-workers", "2",
         "--enqueue-trial", str(baseline), "--max-trials", "3", "-o", '{"trainer.num_epochs": 1}'],
        workdir,
    )

    assert result.code == 0, result
    study = optuna.load_study(study_name=name, storage=postgres)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert study.trials[0].params == read_json(baseline)
    for trial in study.trials:
        runs = [read_json(workdir / "result" / f"trial_{trial.number}" / run / "metrics.json") for run in RUNS[:2]]
        assert trial.values == pytest.approx(
            [statistics.fmean(m["best_validation_accuracy"] for m in runs), statistics.fmean(m["num_parameters"] for m in runs)],
            abs=1e-12,
        )
