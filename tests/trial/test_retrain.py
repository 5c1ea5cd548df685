"""`allennlp retrain`: retraining a tuned trial reproduces it; refusals leave everything in place."""
import functools
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from allennlp_optuna import retrain
from tests.conftest import (
    CONFIG, TunedStudy, assert_command_refused, read_json, run_cli, run_cli_process, validation_metrics,
)

def retrain_argv(tuned: TunedStudy, *extra: str) -> list:
    return ["retrain", str(CONFIG), "-s", "retrained", "--storage", tuned.storage, *extra]


def test_retraining_the_best_trial_reproduces_its_validation_metrics(
    tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    result = run_cli(retrain_argv(tuned_study), capsys)

    best = tuned_study.load().best_trial
    trial_dir = tuned_study.result / f"trial_{best.number}"
    assert result.code == 0, result
    assert validation_metrics(workdir / "retrained") == validation_metrics(trial_dir)
    assert read_json(workdir / "retrained" / "config.json") == read_json(trial_dir / "config.json")
    assert (workdir / "retrained" / "model.tar.gz").is_file()
    assert result.out.strip().splitlines()[-1] == (
        f"best_validation_accuracy = {best.value} (trial {best.number}: {best.value})"
    )


def test_retrain_prints_what_it_trains_a_line_per_epoch_and_the_result_not_allennlps_log(
    tuned_study: TunedStudy, workdir: Path
) -> None:
    result = run_cli_process(retrain_argv(tuned_study), cwd=workdir)

    best = tuned_study.load().best_trial
    assert result.code == 0, result
    console = (result.out + result.err).strip().splitlines()
    assert len(console) <= 40
    assert result.out.splitlines()[:3] == [
        f"Retraining trial {best.number} of study 'classifier': best_validation_accuracy = {best.value}, "
        f"directory {tuned_study.result / f'trial_{best.number}'}",
        "  with " + " ".join(f"{k}={v}" for k, v in best.params.items()),
        "  into retrained (AllenNLP's log: retrained/out.log)",
    ]
    epochs = read_json(workdir / "retrained" / "config.json")["trainer"]["num_epochs"]
    epoch_lines = [line for line in result.out.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epoch_lines] == [f"epoch {e}/{epochs}" for e in range(1, epochs + 1)]
    last = read_json(workdir / "retrained" / f"metrics_epoch_{epochs - 1}.json")["validation_accuracy"]
    assert epoch_lines[-1].startswith(f"epoch {epochs}/{epochs}: validation_accuracy={last:.4g}, ")
    plugins = "INFO - allennlp.common.plugins - Plugin"  # AllenNLP's own start-up line, before any command runs
    assert [line for line in console if " - INFO - " in line and plugins not in line] == []  # the log is in out.log
    assert "Beginning training." in (workdir / "retrained" / "out.log").read_text()

    verbose = run_cli_process(retrain_argv(tuned_study, "-f", "--verbose"), cwd=workdir)
    assert verbose.code == 0, verbose
    assert "INFO - allennlp.training.gradient_descent_trainer - Beginning training." in verbose.out


def test_a_chosen_trial_is_retrained_without_its_pruning_callback(tuned_study: TunedStudy, workdir: Path) -> None:
    study = tuned_study.load()
    chosen = next(t for t in study.trials if t.number != study.best_trial.number)
    with_pruner = '{"trainer.callbacks": [{"type": "optuna_pruner"}]}'

    metrics = retrain(str(CONFIG), str(workdir / "chosen"), study, chosen.number, overrides=with_pruner)

    trial_dir = tuned_study.result / f"trial_{chosen.number}"
    assert metrics["best_validation_accuracy"] == chosen.value
    assert validation_metrics(workdir / "chosen") == validation_metrics(trial_dir)
    config = read_json(workdir / "chosen" / "config.json")
    assert config == read_json(trial_dir / "config.json")
    assert "callbacks" not in config["trainer"]
    assert config["model"]["dropout"] == chosen.params["dropout"]
    assert config["trainer"]["optimizer"] == {"type": chosen.params["optimizer"], "lr": chosen.params["lr"]}


def test_a_non_empty_directory_needs_force(tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    (workdir / "retrained").mkdir()
    (workdir / "retrained" / "notes.txt").write_text("keep me")

    refused = run_cli(retrain_argv(tuned_study), capsys)

    assert_refused(refused, "serialization directory retrained is not empty; pass -f to overwrite it or -r to resume its training")
    assert (workdir / "retrained" / "notes.txt").read_text() == "keep me"

    forced = run_cli(retrain_argv(tuned_study, "-f"), capsys)

    assert forced.code == 0, forced
    assert not (workdir / "retrained" / "notes.txt").exists()
    assert read_json(workdir / "retrained" / "metrics.json")["best_validation_accuracy"] == tuned_study.load().best_value


def test_dry_run_builds_the_vocabulary_without_training(
    tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    result = run_cli(retrain_argv(tuned_study, "--dry-run"), capsys)

    assert result.code == 0, result
    assert (workdir / "retrained" / "vocabulary" / "tokens.txt").is_file()
    assert not (workdir / "retrained" / "metrics.json").exists()
    assert not (workdir / "retrained" / "model.tar.gz").exists()


assert_refused = functools.partial(assert_command_refused, "retrain")


def test_the_studys_own_trial_directories_are_never_overwritten(
    tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    before = sorted(p.name for p in tuned_study.result.iterdir())

    result = run_cli(["retrain", str(CONFIG), "-s", str(tuned_study.result), "-f", "--storage", tuned_study.storage], capsys)

    assert_refused(
        result,
        f"{tuned_study.result} holds trial 0's directory {tuned_study.result / 'trial_0'}; "
        "retrain into a new --serialization-dir",
    )
    assert sorted(p.name for p in tuned_study.result.iterdir()) == before
    assert [p for p in before if p.startswith("trial_")] == ["trial_0", "trial_1", "trial_2"]
    assert (tuned_study.result / "trial_0" / "model.tar.gz").is_file()


def test_an_unknown_trial_number_is_refused(tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    result = run_cli(retrain_argv(tuned_study, "--trial", "7"), capsys)

    assert_refused(result, "study 'classifier' has no trial 7; its trials are numbered 0 to 2")
    assert not (workdir / "retrained").exists()


def test_a_failed_trial_is_refused(workdir: Path, storage: str, capsys: pytest.CaptureFixture) -> None:
    study = optuna.create_study(study_name="early", storage=storage)
    study.tell(study.ask(), state=TrialState.FAIL)

    result = run_cli(["retrain", str(CONFIG), "-s", "retrained", "--storage", storage, "--trial", "0"], capsys)

    assert_refused(result, "trial 0 of study 'early' is FAIL; choose a COMPLETE or PRUNED trial with --trial")
    assert not (workdir / "retrained").exists()


def test_force_and_recover_together_are_refused(
    tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    result = run_cli(retrain_argv(tuned_study, "-f", "-r"), capsys)

    assert_refused(result, "-f/--force and -r/--recover exclude each other; pass one")
