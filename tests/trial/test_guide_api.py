"""The guide's exercise 4 and 5 code, with only `optuna.integration.allennlp` replaced by our import.

The config is the guide's `imdb_optuna.jsonnet` on the tiny fixture data (see its header).
"""
import shutil
from pathlib import Path

import optuna
import pytest

from allennlp_optuna import AllenNLPExecutor, dump_best_config
from tests.conftest import FIXTURES, read_json, run_cli


# Exercise 4, as the guide writes it (the executor's import is the only change).
def objective(trial: optuna.Trial) -> float:
    trial.suggest_int("embedding_dim", 32, 256)
    trial.suggest_int("max_filter_size", 2, 6)
    trial.suggest_int("num_filters", 32, 256)
    trial.suggest_int("output_dim", 32, 256)
    trial.suggest_float("dropout", 0.0, 0.8)
    trial.suggest_float("lr", 5e-3, 5e-1, log=True)

    executor = AllenNLPExecutor(
        trial=trial,  # trial object
        config_file="./config/imdb_optuna.jsonnet",  # path to jsonnet
        serialization_dir=f"./result/optuna/{trial.number}",
        metrics="best_validation_accuracy",
    )
    return executor.run()


def run_guide_optimization(n_trials: int) -> None:
    study = optuna.create_study(
        storage="sqlite:///result/trial.db",  # save results in DB
        sampler=optuna.samplers.TPESampler(seed=24),
        study_name="optuna_allennlp",
        direction="maximize",
    )

    timeout = 60 * 60 * 10  # timeout (sec): 60*60*10 sec => 10 hours
    study.optimize(
        objective,
        n_jobs=1,  # number of processes in parallel execution
        n_trials=n_trials,  # number of trials to train a model (the guide: 30)
        timeout=timeout,  # threshold for executing time (sec)
    )


def test_the_guides_exercises_4_and_5_run_with_only_the_import_changed(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    shutil.copytree(FIXTURES / "config", workdir / "config")
    shutil.copytree(FIXTURES / "data", workdir / "data")
    (workdir / "result").mkdir()  # the guide's storage, sqlite:///result/trial.db, lives there

    run_guide_optimization(n_trials=2)

    # Exercise 5, in a separate "analysis script".
    study = optuna.load_study(storage="sqlite:///result/trial.db", study_name="optuna_allennlp")
    dataframe = study.trials_dataframe()
    dump_best_config("./config/imdb_optuna.jsonnet", "./best_config.json", study)

    assert list(dataframe["state"]) == ["COMPLETE"] * 2
    for row in dataframe.itertuples():
        trial_dir = workdir / "result" / "optuna" / str(row.number)
        assert row.value == read_json(trial_dir / "metrics.json")["best_validation_accuracy"]
        config = read_json(trial_dir / "config.json")
        assert config["model"]["seq2vec_encoder"]["output_dim"] == row.params_output_dim
        assert config["model"]["seq2vec_encoder"]["ngram_filter_sizes"] == list(range(2, row.params_max_filter_size + 1))

    best_dir = workdir / "result" / "optuna" / str(study.best_trial.number)
    assert read_json(workdir / "best_config.json") == read_json(best_dir / "config.json")
    train = run_cli(["train", "best_config.json", "-s", "retrained"], capsys)
    assert train.code == 0, train
    assert read_json(workdir / "retrained" / "metrics.json")["best_validation_accuracy"] == study.best_value
