"""`allennlp tune`: real studies that train the tiny CNN classifier of test_fixtures/."""
import json
import os
import tarfile
from pathlib import Path

import optuna
import pytest
from allennlp.common.checks import ConfigurationError
from optuna.trial import TrialState

from allennlp_optuna.study.config import ext_var_value
from allennlp_optuna.study.search_space import SearchSpace
from allennlp_optuna.tuning import tune
from tests.conftest import CONFIG, HPARAMS, read_json, run_cli, run_cli_process, write_json


def tune_fixture(workdir: Path, storage: str, **kwargs) -> optuna.Study:
    kwargs.setdefault("metrics", "best_validation_accuracy")
    kwargs.setdefault("n_trials", 3)
    return tune(str(CONFIG), str(HPARAMS), str(workdir / "result"), storage=storage, **kwargs)


def test_three_trials_complete_with_values_from_their_metrics(workdir: Path, storage: str) -> None:
    study = tune_fixture(workdir, storage)

    space = {h.name: h.distribution for h in SearchSpace.from_file(str(HPARAMS)).hyperparameters}
    assert study.study_name == "classifier"
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert [t.number for t in study.trials] == [0, 1, 2]
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        assert set(trial.params) == set(space)
        for name, value in trial.params.items():
            assert space[name]._contains(space[name].to_internal_repr(value)), (name, value)
        trial_dir = workdir / "result" / f"trial_{trial.number}"
        assert trial.user_attrs["serialization_dir"] == str(trial_dir)
        assert trial.value == read_json(trial_dir / "metrics.json")["best_validation_accuracy"]
        assert {"config.json", "best.th", "vocabulary", "metrics.json"} <= set(os.listdir(trial_dir))


WEAK = {"embedding_dim": 4, "max_filter_size": 2, "num_filters": 2, "dropout": 0.0, "lr": 0.005, "optimizer": "sgd"}
WEAK_TOO = {**WEAK, "embedding_dim": 6}
STRONG = {"embedding_dim": 4, "max_filter_size": 3, "num_filters": 4, "dropout": 0.3, "lr": 0.0446, "optimizer": "adam"}


def test_the_best_trial_alone_gets_a_model_archive_when_the_study_ends(
    workdir: Path, storage: str, capsys: pytest.CaptureFixture
) -> None:
    values = [str(write_json(workdir / f"{i}.json", params)) for i, params in enumerate((WEAK, STRONG, WEAK_TOO))]
    study = tune_fixture(workdir, storage, enqueue_trial=values)

    weak, strong, weak_again = study.trials
    assert [t.params for t in study.trials] == [WEAK, STRONG, WEAK_TOO]
    assert strong.value > max(weak.value, weak_again.value)  # the fixture's premise
    assert study.best_trial.number == 1
    assert sorted(p.relative_to(workdir).as_posix() for p in workdir.glob("result/*/model.tar.gz*")) == [
        "result/trial_1/model.tar.gz"  # and no temporary file left behind
    ]

    # The archive holds what `allennlp train` puts there; the unarchived directory evaluates alike.
    with tarfile.open(workdir / "result" / "trial_1" / "model.tar.gz") as archive:
        assert {"config.json", "weights.th", "vocabulary", "meta.json"} <= {n.split("/")[0] for n in archive.getnames()}
    dev = str(CONFIG.parent.parent / "data" / "dev.jsonl")
    for trial, model in ((strong, "trial_1/model.tar.gz"), (weak_again, "trial_2")):
        output = workdir / f"evaluate_{trial.number}.json"
        result = run_cli(["evaluate", str(workdir / "result" / model), dev, "--output-file", str(output)], capsys)
        assert result.code == 0, result
        assert read_json(output)["accuracy"] == pytest.approx(trial.value)

    archived = (workdir / "result" / "trial_1" / "model.tar.gz").stat().st_mtime_ns
    weak_once_more = str(write_json(workdir / "3.json", {**WEAK, "embedding_dim": 8}))
    resumed = tune_fixture(workdir, storage, n_trials=1, skip_if_exists=True, enqueue_trial=[weak_once_more])
    assert resumed.best_trial.number == 1 and len(resumed.trials) == 4
    assert (workdir / "result" / "trial_1" / "model.tar.gz").stat().st_mtime_ns == archived  # not rewritten
    assert not (workdir / "result" / "trial_3" / "model.tar.gz").exists()


def test_archive_all_writes_every_trials_model_archive(workdir: Path, storage: str) -> None:
    values = [str(write_json(workdir / f"{i}.json", params)) for i, params in enumerate((STRONG, WEAK))]
    study = tune_fixture(workdir, storage, n_trials=2, enqueue_trial=values, archive="all")

    assert study.trials[1].value < study.trials[0].value  # no improvement, archived anyway
    for trial in study.trials:
        assert (workdir / "result" / f"trial_{trial.number}" / "model.tar.gz").is_file()


def test_sampled_values_reach_the_config_as_allennlp_train_reads_them(workdir: Path, storage: str) -> None:
    study = tune_fixture(workdir, storage, n_trials=2)

    for trial in study.trials:
        config = read_json(Path(trial.user_attrs["serialization_dir"]) / "config.json")
        assert config["trainer"]["optimizer"] == {"type": trial.params["optimizer"], "lr": trial.params["lr"]}
        assert config["model"]["dropout"] == trial.params["dropout"]
        assert config["model"]["seq2vec_encoder"]["num_filters"] == trial.params["num_filters"]
        assert config["model"]["seq2vec_encoder"]["ngram_filter_sizes"] == list(
            range(2, trial.params["max_filter_size"] + 1)
        )
        assert trial.params["num_filters"] % 2 == 0  # step 2
        assert round(trial.params["dropout"] * 10, 6).is_integer()  # step 0.1


def test_same_sampler_seed_gives_same_params_and_values(workdir: Path, storage: str) -> None:
    settings = write_json(workdir / "optuna.json", {"sampler": {"type": "TPESampler", "attributes": {"seed": 3}}})
    first = tune_fixture(workdir, storage, study_name="first", optuna_param_path=str(settings))
    second = tune(
        str(CONFIG),
        str(HPARAMS),
        str(workdir / "again"),
        study_name="second",
        storage=storage,
        metrics="best_validation_accuracy",
        n_trials=3,
        optuna_param_path=str(settings),
    )

    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    assert [t.value for t in first.trials] == [t.value for t in second.trials]
    assert len({json.dumps(t.params, sort_keys=True) for t in first.trials}) == 3


def test_trial_value_equals_a_direct_allennlp_train(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    result = run_cli(
        ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--n-trials", "1", "--metrics", "best_validation_accuracy"],
        capsys,
    )
    assert result.code == 0, result
    trial = optuna.load_study(study_name="classifier", storage="sqlite:///allennlp_optuna.db").trials[0]

    env = {name: ext_var_value(value) for name, value in trial.params.items()}
    train = run_cli_process(["train", str(CONFIG), "-s", "direct"], cwd=workdir, env=env)

    assert train.code == 0, train
    direct = read_json(workdir / "direct" / "metrics.json")
    tuned = read_json(workdir / "result" / "trial_0" / "metrics.json")
    assert trial.value == direct["best_validation_accuracy"]
    assert tuned["best_validation_loss"] == direct["best_validation_loss"]


def test_cli_prints_a_summary_that_matches_the_study(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    result = run_cli(
        ["tune", str(CONFIG), str(HPARAMS), "--serialization-dir", "result", "--study-name", "cnn",
         "--storage", "sqlite:///cnn.db", "--n-trials", "2", "--metrics", "best_validation_accuracy"],
        capsys,
    )

    assert result.code == 0, result
    study = optuna.load_study(study_name="cnn", storage="sqlite:///cnn.db")
    best = study.best_trial
    summary = result.out.strip().splitlines()[-9:-4]
    assert summary == [
        "Study 'cnn' (maximize best_validation_accuracy): 2 trials: 2 COMPLETE",
        "Sampler TPESampler, pruner none (allennlp-optuna's defaults)",
        f"Best trial: {best.number}, best_validation_accuracy = {best.value}",
        "Best params: " + " ".join(f"{k}={v}" for k, v in best.params.items()),
        f"Best trial's directory: {workdir / 'result' / f'trial_{best.number}'}",
    ]


def test_direction_is_inferred_from_the_metric(workdir: Path, storage: str) -> None:
    study = tune_fixture(workdir, storage, metrics="best_validation_loss", n_trials=1)

    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    metrics = read_json(workdir / "result" / "trial_0" / "metrics.json")
    assert study.trials[0].value == metrics["best_validation_loss"]


def test_skip_if_exists_resumes_the_study(workdir: Path, storage: str) -> None:
    tune_fixture(workdir, storage, n_trials=3)
    first_metrics = (workdir / "result" / "trial_0" / "metrics.json").read_bytes()
    first_mtime = os.stat(workdir / "result" / "trial_0" / "metrics.json").st_mtime_ns

    study = tune_fixture(workdir, storage, n_trials=2, skip_if_exists=True)

    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert sorted(p.name for p in (workdir / "result").iterdir()) == [
        "report.html", *(f"trial_{n}" for n in range(5)), "trials.csv"
    ]
    assert (workdir / "result" / "trial_0" / "metrics.json").read_bytes() == first_metrics
    assert os.stat(workdir / "result" / "trial_0" / "metrics.json").st_mtime_ns == first_mtime


def test_overrides_reach_every_trial(workdir: Path, storage: str) -> None:
    study = tune_fixture(workdir, storage, n_trials=2, overrides='{"trainer.num_epochs": 1}')

    for trial in study.trials:
        trial_dir = Path(trial.user_attrs["serialization_dir"])
        assert read_json(trial_dir / "config.json")["trainer"]["num_epochs"] == 1
        assert read_json(trial_dir / "metrics.json")["epoch"] == 0


def test_environment_variables_are_visible_and_sampled_values_win(
    workdir: Path, storage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = [e for e in read_json(HPARAMS) if e["attributes"]["name"] != "optimizer"]
    hparams = write_json(workdir / "hparams.json", entries)
    monkeypatch.setenv("optimizer", "sgd")
    monkeypatch.setenv("lr", "123.0")

    study = tune(str(CONFIG), str(hparams), str(workdir / "result"), storage=storage, n_trials=1)

    trial = study.trials[0]
    config = read_json(workdir / "result" / "trial_0" / "config.json")
    assert config["trainer"]["optimizer"] == {"type": "sgd", "lr": trial.params["lr"]}
    assert trial.params["lr"] < 1


def test_a_failing_trial_is_recorded_and_skip_exception_goes_on(workdir: Path, storage: str) -> None:
    entries = read_json(HPARAMS)
    for entry in entries:
        if entry["attributes"]["name"] == "optimizer":
            entry["attributes"]["choices"] = ["no_such_optimizer"]
    hparams = write_json(workdir / "hparams.json", entries)

    with pytest.raises(ConfigurationError, match=r"^no trial finished: all 2 trial\(s\) of this run failed"):
        tune(str(CONFIG), str(hparams), str(workdir / "result"), storage=storage, n_trials=2, skip_exception=True)

    study = optuna.load_study(study_name="classifier", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]  # the second ran after the first
    for trial in study.trials:
        assert "no_such_optimizer" in trial.user_attrs["fail_reason"]
        assert "ConfigurationError" in trial.user_attrs["fail_reason"]
