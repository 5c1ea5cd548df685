"""`allennlp best-params`: the best values in each format, the best config, and bad input."""
import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import CONFIG, TunedStudy, assert_command_refused, read_json, run_cli, validation_metrics

def best_params_argv(tuned: TunedStudy, *extra: str) -> list:
    return ["best-params", "--study-name", "classifier", "--storage", tuned.storage, *extra]


def test_plain_output_is_the_old_plugins_name_value_line(
    tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    result = run_cli(best_params_argv(tuned_study), capsys)

    best = tuned_study.load().best_trial
    assert result.code == 0, result
    assert result.out == " ".join(f"{name}={value}" for name, value in best.params.items()) + "\n"
    assert result.err.strip().splitlines()[-1] == (
        f"Best trial {best.number} of study 'classifier': best_validation_accuracy = {best.value}, "
        f"directory {tuned_study.result / f'trial_{best.number}'}"
    )


def test_json_output_equals_best_params(tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    result = run_cli(best_params_argv(tuned_study, "--format", "json"), capsys)

    assert result.code == 0, result
    assert json.loads(result.out) == tuned_study.load().best_params


def test_without_study_name_the_storages_only_study_is_used(
    tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    result = run_cli(["best-params", "--storage", tuned_study.storage, "--format", "json"], capsys)

    assert result.code == 0, result
    assert json.loads(result.out) == tuned_study.load().best_params


def test_shell_output_evaled_before_allennlp_train_reproduces_the_best_trial(
    tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli(best_params_argv(tuned_study, "--format", "shell"), capsys)
    assert result.code == 0, result
    (workdir / "best.sh").write_text(result.out)
    best = tuned_study.load().best_trial

    print_environment = "import json, os, sys; print(json.dumps({n: os.environ[n] for n in sys.argv[1:]}))"
    script = f'eval "$(cat best.sh)" && exec "{sys.executable}" -c "$0" "$@"'
    shell = subprocess.run(["bash", "-c", script, print_environment, *best.params], cwd=workdir, capture_output=True, text=True)
    assert shell.returncode == 0, shell.stderr
    for name, value in json.loads(shell.stdout).items():
        monkeypatch.setenv(name, value)
    train = run_cli(["train", str(CONFIG), "-s", "direct"], capsys)

    assert result.out.splitlines() == [f"export {name}={value}" for name, value in best.params.items()]
    assert train.code == 0, train
    direct = validation_metrics(workdir / "direct")
    assert direct["best_validation_accuracy"] == best.value
    assert direct == validation_metrics(tuned_study.result / f"trial_{best.number}")


def test_the_best_config_is_plain_json_that_allennlp_train_accepts(
    tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    pruner = '{"trainer.callbacks": [{"type": "optuna_pruner"}]}'
    result = run_cli(best_params_argv(tuned_study, str(CONFIG), "-o", pruner), capsys)
    assert result.code == 0, result
    (workdir / "best_config.json").write_text(result.out)

    train = run_cli(["train", "best_config.json", "-s", "from_config"], capsys)

    best = tuned_study.load().best_trial
    trial_dir = tuned_study.result / f"trial_{best.number}"
    assert json.loads(result.out) == read_json(trial_dir / "config.json")
    assert "callbacks" not in json.loads(result.out)["trainer"]
    assert train.code == 0, train
    assert validation_metrics(workdir / "from_config") == validation_metrics(trial_dir)


def test_output_file_gets_the_config_and_stdout_the_values(
    tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    result = run_cli(best_params_argv(tuned_study, str(CONFIG), "--output-file", "best.json", "--format", "json"), capsys)

    best = tuned_study.load().best_trial
    assert result.code == 0, result
    assert json.loads(result.out) == best.params
    assert read_json(workdir / "best.json") == read_json(tuned_study.result / f"trial_{best.number}" / "config.json")


def assert_refused(result, message: str) -> None:
    assert result.out == ""
    assert_command_refused("best-params", result, message)


def test_a_study_without_a_complete_trial_is_one_line(workdir: Path, storage: str, capsys: pytest.CaptureFixture) -> None:
    study = optuna.create_study(study_name="early", storage=storage)
    study.tell(study.ask(), state=TrialState.FAIL)
    study.tell(study.ask(), state=TrialState.PRUNED)

    result = run_cli(["best-params", "--storage", storage], capsys)

    assert_refused(
        result,
        "study 'early' has no COMPLETE trial yet (2 trials: 1 PRUNED, 1 FAIL); run allennlp tune until a trial "
        "completes",
    )


def test_an_unknown_study_lists_the_existing_ones(
    tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    result = run_cli(["best-params", "--study-name", "clasifier", "--storage", tuned_study.storage], capsys)

    assert_refused(result, f"no study 'clasifier' in {tuned_study.storage}; studies there: classifier")


def test_several_studies_need_a_study_name(workdir: Path, storage: str, capsys: pytest.CaptureFixture) -> None:
    optuna.create_study(study_name="first", storage=storage)
    optuna.create_study(study_name="second", storage=storage)

    result = run_cli(["best-params", "--storage", storage], capsys)

    assert_refused(result, f"{storage} holds 2 studies (first, second); choose one with --study-name")


def test_a_missing_storage_file_is_refused_and_not_created(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    result = run_cli(["best-params"], capsys)

    assert_refused(
        result,
        f"storage sqlite:///allennlp_optuna.db does not exist: no file {workdir / 'allennlp_optuna.db'}; "
        "pass the --storage that allennlp tune used",
    )
    assert not (workdir / "allennlp_optuna.db").exists()


def test_a_missing_storage_names_the_studies_below_and_their_storage_works(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    (workdir / "demo").mkdir()
    (workdir / "demo" / "notes.db").write_text("an SQLite file of something else is left alone\n")
    study = optuna.create_study(study_name="imdb", storage="sqlite:///demo/demo.db", direction="maximize")
    study.add_trial(optuna.trial.create_trial(params={"lr": 0.1}, value=0.8,
                                              distributions={"lr": optuna.distributions.FloatDistribution(0, 1)}))
    before = {p: p.stat().st_mtime_ns for p in (workdir / "demo").iterdir()}

    result = run_cli(["best-params"], capsys)

    assert_refused(
        result,
        f"storage sqlite:///allennlp_optuna.db does not exist: no file {workdir / 'allennlp_optuna.db'}; "
        f"studies found below {workdir}: imdb (--storage sqlite:///demo/demo.db); "
        "pass the one you mean with --study-name and --storage",
    )
    assert {p: p.stat().st_mtime_ns for p in (workdir / "demo").iterdir()} == before
    assert not (workdir / "allennlp_optuna.db").exists()
    advised = run_cli(["best-params", "--study-name", "imdb", "--storage", "sqlite:///demo/demo.db"], capsys)
    assert advised.code == 0 and advised.out.strip() == "lr=0.1", advised


def test_a_storage_that_is_not_a_database_is_refused(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    (workdir / "notes.txt").write_text("not a database\n" * 100)

    result = run_cli(["best-params", "--storage", "sqlite:///notes.txt"], capsys)

    assert_refused(result, "cannot open storage sqlite:///notes.txt: (sqlite3.DatabaseError) file is not a database")
    assert (workdir / "notes.txt").read_text() == "not a database\n" * 100


def test_a_storage_in_a_missing_directory_is_refused(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    missing = workdir / "no_such_dir" / "study.db"
    result = run_cli(["best-params", "--storage", f"sqlite:///{missing}"], capsys)

    assert_refused(
        result,
        f"storage sqlite:///{missing} does not exist: no file {missing}; pass the --storage that allennlp tune used",
    )
    assert not missing.parent.exists()


def test_config_options_without_a_config_are_refused(
    tuned_study: TunedStudy, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    result = run_cli(best_params_argv(tuned_study, "--output-file", "best.json"), capsys)

    assert_refused(result, "--output-file and --overrides need a CONFIG argument to evaluate")
    assert not os.path.exists(workdir / "best.json")
