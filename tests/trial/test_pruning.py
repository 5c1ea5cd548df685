"""Pruning: the `optuna_pruner` callback stops poor trials, in one process and in 2-worker training."""
import json
import logging
import multiprocessing
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import optuna
import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.data.data_loaders import SimpleDataLoader
from allennlp.data.dataset_readers import TextClassificationJsonReader
from allennlp.data.tokenizers import WhitespaceTokenizer
from allennlp.models import BasicClassifier
from allennlp.modules.seq2vec_encoders import CnnEncoder
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
from allennlp.modules.token_embedders import Embedding
from allennlp.training import GradientDescentTrainer
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna import AllenNLPExecutor, AllenNLPPruningCallback
from allennlp_optuna.core.errors import StudyError
from allennlp_optuna.trial.callbacks.pruning import pruner_spec
from allennlp_optuna.study.search_space import SearchSpace
from allennlp_optuna.study.samplers import OptunaSettings
from allennlp_optuna.core.trial_attrs import FAIL_REASON_ATTR
from allennlp_optuna.tuning import tune
from tests.conftest import CONFIG, FIXTURES, HPARAMS, read_json, run_cli, write_json
from tests.commands.test_bad_input import METRIC_CHOICES

# Two trials whose fate is known: adam at 0.1 learns the fixture, sgd at 0.005 stays at chance.
GOOD = {"embedding_dim": 16, "max_filter_size": 3, "num_filters": 8, "dropout": 0.0, "lr": 0.1, "optimizer": "adam"}
POOR = {**GOOD, "lr": 0.005, "optimizer": "sgd"}
DECLINING = {**GOOD, "lr": 0.3, "optimizer": "sgd"}  # its accuracy drops at epoch 2
THRESHOLD = {"type": "ThresholdPruner", "attributes": {"lower": 0.6, "n_warmup_steps": 1}}
DISTRIBUTED = json.dumps({"distributed": {"cuda_devices": [-1, -1]}})


def tune_enqueued(
    workdir: Path, storage: str, pruner: Dict[str, Any], trials: List[Dict[str, Any]], **kwargs: Any
) -> optuna.Study:
    """Tune the fixture with `pruner`, first training the `trials` params in this order."""
    study = optuna.create_study(study_name="classifier", storage=storage, direction="maximize")
    for params in trials:
        study.enqueue_trial(params)
    settings = write_json(workdir / "optuna.json", {"pruner": pruner})
    kwargs.setdefault("n_trials", len(trials))
    return tune(
        str(CONFIG),
        str(HPARAMS),
        str(workdir / "result"),
        storage=storage,
        metrics="best_validation_accuracy",
        optuna_param_path=str(settings),
        skip_if_exists=True,
        **kwargs,
    )


def epoch_accuracies(trial: FrozenTrial) -> Dict[int, float]:
    """validation_accuracy of every epoch the trial trained, from its metrics_epoch_N.json."""
    trial_dir = Path(trial.user_attrs["serialization_dir"])
    return {
        int(path.stem.rsplit("_", 1)[1]): read_json(path)["validation_accuracy"]
        for path in trial_dir.glob("metrics_epoch_*.json")
    }


def assert_pruned_at_threshold(study: optuna.Study) -> Tuple[FrozenTrial, FrozenTrial]:
    good, poor = study.trials
    assert good.params == GOOD and poor.params == POOR
    assert good.state == TrialState.COMPLETE
    assert good.intermediate_values == epoch_accuracies(good)
    assert sorted(good.intermediate_values) == [0, 1, 2]
    assert good.value == read_json(Path(good.user_attrs["serialization_dir"]) / "metrics.json")["best_validation_accuracy"]
    assert all(value >= 0.6 for step, value in good.intermediate_values.items() if step >= 1)

    assert poor.state == TrialState.PRUNED
    assert poor.intermediate_values == epoch_accuracies(poor)
    assert sorted(poor.intermediate_values) == [0, 1]  # warm-up step 0, below the threshold at step 1
    assert poor.intermediate_values[1] < 0.6
    assert poor.value == poor.intermediate_values[1]
    assert not (Path(poor.user_attrs["serialization_dir"]) / "metrics.json").exists()
    return good, poor


def test_threshold_pruner_prunes_the_poor_trial_at_its_step(
    workdir: Path, storage: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="allennlp_optuna")
    study = tune_enqueued(workdir, storage, THRESHOLD, [GOOD, POOR])

    good, poor = assert_pruned_at_threshold(study)
    assert f"The study's pruner is ThresholdPruner and {CONFIG} lists no 'optuna_pruner' callback" in caplog.text
    callbacks = read_json(Path(poor.user_attrs["serialization_dir"]) / "config.json")["trainer"]["callbacks"]
    assert callbacks == [
        {
            "type": "optuna_pruner",
            "monitor": "validation_accuracy",
            "storage": storage,
            "study_name": "classifier",
            "trial_id": poor._trial_id,
            "pruner": {"type": "ThresholdPruner", "attributes": {"lower": 0.6, "n_warmup_steps": 1, "interval_steps": 1}},
        }
    ]


def test_two_worker_distributed_training_prunes_and_stops_every_worker(workdir: Path, storage: str) -> None:
    study = tune_enqueued(workdir, storage, THRESHOLD, [GOOD, POOR], overrides=DISTRIBUTED)

    good, poor = assert_pruned_at_threshold(study)
    assert multiprocessing.active_children() == []
    poor_dir = Path(poor.user_attrs["serialization_dir"])
    assert "Worker stops at epoch 1: the primary worker stopped the trial." in (poor_dir / "out_worker1.log").read_text()
    assert (Path(good.user_attrs["serialization_dir"]) / "model.tar.gz").is_file()


def test_an_error_in_a_distributed_worker_fails_the_trial_with_its_traceback(workdir: Path, storage: str) -> None:
    overrides = json.dumps({"distributed": {"cuda_devices": [-1, -1]}, "trainer.num_epochs": 1})
    settings = write_json(workdir / "optuna.json", {"pruner": THRESHOLD})

    with pytest.raises(StudyError) as stopped:  # a --metrics key no epoch reports stops even --skip-exception
        tune(
            str(CONFIG), str(HPARAMS), str(workdir / "result"), storage=storage, metrics="best_validation_f1",
            n_trials=1, optuna_param_path=str(settings), overrides=overrides, skip_exception=True,
        )

    trial = optuna.load_study(study_name="classifier", storage=storage).trials[0]
    assert trial.state == TrialState.FAIL
    reason = trial.user_attrs[FAIL_REASON_ATTR]
    assert "-- Process 0 terminated with the following error:" in reason
    assert "in on_epoch" in reason
    assert reason.strip().splitlines()[-1] == f"allennlp_optuna.core.errors.StudyError: {stopped.value.message}"
    assert stopped.value.message.startswith(
        f"metric 'best_validation_f1' is not among the metrics of {workdir / 'result' / 'trial_0'} after epoch 0; "
        "choose --metrics from: best_epoch, best_validation_accuracy, best_validation_loss, epoch, "
    )
    assert "training_worker_1_memory_MB" in stopped.value.message  # the second worker's metrics are there too
    assert multiprocessing.active_children() == []


def test_a_monitored_metric_missing_after_the_first_epoch_is_a_one_line_error(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    write_json(workdir / "optuna.json", {"pruner": THRESHOLD})
    result = run_cli(
        ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--n-trials", "1", "--metrics", "best_validation_f1",
         "--optuna-param-path", "optuna.json"],
        capsys,
    )

    assert result.code == 2, result
    assert result.err.strip().splitlines()[-1] == (  # the metric check speaks before the pruner reads the metric
        "allennlp tune: error: metric 'best_validation_f1' is not among the metrics of result/trial_0 after epoch 0; "
        f"choose --metrics from: {METRIC_CHOICES}"
    )
    trial = optuna.load_study(study_name="classifier", storage="sqlite:///allennlp_optuna.db").trials[0]
    assert trial.state == TrialState.FAIL
    assert trial.intermediate_values == {}


@pytest.mark.parametrize(
    "pruner, second, states",
    [
        ({"type": "MedianPruner", "attributes": {"n_startup_trials": 1}}, POOR, ["COMPLETE", "PRUNED"]),
        ({"type": "SuccessiveHalvingPruner", "attributes": {"min_resource": 1}}, POOR, ["COMPLETE", "PRUNED"]),
        ({"type": "HyperbandPruner", "attributes": {"min_resource": 1, "max_resource": 3}}, POOR, None),
        (
            {"type": "PatientPruner", "attributes": {
                "patience": 0, "wrapped_pruner": {"type": "MedianPruner", "attributes": {"n_startup_trials": 1}}}},
            DECLINING,
            ["COMPLETE", "PRUNED"],
        ),
    ],
    ids=["median", "successive-halving", "hyperband", "patient-median"],
)
def test_pruners_from_the_optuna_settings_file(
    workdir: Path, storage: str, pruner: Dict[str, Any], second: Dict[str, Any], states: Optional[List[str]]
) -> None:
    study = tune_enqueued(workdir, storage, pruner, [GOOD, second])

    for trial in study.trials:
        trial_dir = Path(trial.user_attrs["serialization_dir"])
        assert trial.intermediate_values == epoch_accuracies(trial)
        assert (trial_dir / "metrics.json").exists() == (trial.state == TrialState.COMPLETE)
        if trial.state == TrialState.PRUNED:
            assert trial.value == trial.intermediate_values[max(trial.intermediate_values)]
        entry = read_json(trial_dir / "config.json")["trainer"]["callbacks"][0]
        assert pruner_spec(OptunaSettings.from_dict({"pruner": entry["pruner"]}).pruner) == entry["pruner"]
        assert entry["pruner"]["type"] == pruner["type"]
    if states is not None:
        assert [t.state.name for t in study.trials] == states
    else:
        assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}


@pytest.mark.parametrize(
    "name", [n for n in optuna.pruners.__all__ if not n.startswith("Base")]
)
def test_every_optuna_pruner_reaches_training_workers_as_json(name: str) -> None:
    non_defaults = {
        "HyperbandPruner": {"min_resource": 2, "max_resource": 9, "reduction_factor": 4},
        "MedianPruner": {"n_startup_trials": 2, "n_warmup_steps": 1, "n_min_trials": 2},
        "NopPruner": {},
        "PatientPruner": {"patience": 2, "min_delta": 0.1,
                          "wrapped_pruner": {"type": "ThresholdPruner", "attributes": {"upper": 2.0}}},
        "PercentilePruner": {"percentile": 25.0, "interval_steps": 2},
        "SuccessiveHalvingPruner": {"min_resource": 2, "min_early_stopping_rate": 1},
        "ThresholdPruner": {"lower": 0.1, "upper": 0.9},
        "WilcoxonPruner": {"p_threshold": 0.05, "n_startup_steps": 3},
    }
    original = OptunaSettings.from_dict({"pruner": {"type": name, "attributes": non_defaults[name]}}).pruner

    spec = pruner_spec(original)
    rebuilt = OptunaSettings.from_dict({"pruner": json.loads(json.dumps(spec))}).pruner

    assert type(rebuilt) is type(original)
    assert pruner_spec(rebuilt) == spec
    for key, value in non_defaults[name].items():
        assert spec["attributes"][key] == (pruner_spec(original._wrapped_pruner) if key == "wrapped_pruner" else value)


def test_no_callback_is_added_without_a_pruner_and_a_listed_one_is_harmless_in_allennlp_train(
    workdir: Path, storage: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = tune_enqueued(workdir, storage, {"type": "NopPruner"}, [GOOD], overrides='{"trainer.num_epochs": 1}')
    config = read_json(Path(study.trials[0].user_attrs["serialization_dir"]) / "config.json")
    assert "callbacks" not in config["trainer"]
    assert study.trials[0].intermediate_values == {}

    for name, value in GOOD.items():
        monkeypatch.setenv(name, str(value))
    overrides = json.dumps({"trainer.num_epochs": 1, "trainer.callbacks": [{"type": "optuna_pruner"}]})
    result = run_cli(["train", str(CONFIG), "-s", "direct", "-o", overrides], capsys)

    assert result.code == 0, result
    assert (workdir / "direct" / "model.tar.gz").is_file()
    assert "The 'optuna_pruner' callback has no trial (training outside `allennlp tune`); it will not prune." in (
        workdir / "direct" / "out.log"
    ).read_text()


def test_a_trainer_patience_is_warned_about(workdir: Path, storage: str, caplog: pytest.LogCaptureFixture) -> None:
    tune_enqueued(workdir, storage, THRESHOLD, [GOOD], overrides='{"trainer.num_epochs": 1, "trainer.patience": 1}')

    assert (
        f"trainer.patience = 1 in {CONFIG}: early stopping can end a trial as COMPLETE before the pruner "
        "sees its later epochs; remove `patience` to leave stopping to the pruner."
    ) in caplog.text


def test_an_in_memory_study_is_refused_before_training(workdir: Path) -> None:
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(GOOD)
    trial = study.ask()
    SearchSpace.from_file(str(HPARAMS)).suggest(trial)
    executor = AllenNLPExecutor(trial, str(CONFIG), str(workdir / "trial"), add_pruning_callback=True)

    with pytest.raises(ConfigurationError) as error:
        executor.run()

    assert str(error.value) == (
        "the optuna_pruner callback reaches its trial through the study's storage, but study "
        f"'{study.study_name}' is kept in InMemoryStorage, which training processes cannot open; create the study "
        "with a storage URL such as storage='sqlite:///study.db'"
    )
    assert not (workdir / "trial").exists()


def test_the_guides_own_script_passes_the_callback_to_a_gradient_descent_trainer() -> None:
    reader = TextClassificationJsonReader(tokenizer=WhitespaceTokenizer())
    train = list(reader.read(str(FIXTURES / "data" / "train.jsonl")))
    dev = list(reader.read(str(FIXTURES / "data" / "dev.jsonl")))
    vocab = Vocabulary.from_instances(train)

    def objective(trial: optuna.Trial) -> float:
        torch.manual_seed(42)
        embedding_dim = trial.suggest_int("embedding_dim", 8, 16)
        lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        model = BasicClassifier(
            vocab,
            BasicTextFieldEmbedder({"tokens": Embedding(embedding_dim, vocab_namespace="tokens", vocab=vocab)}),
            CnnEncoder(embedding_dim, num_filters=8, ngram_filter_sizes=(2, 3)),
        )
        train_loader = SimpleDataLoader(train, 16, shuffle=False, vocab=vocab)
        dev_loader = SimpleDataLoader(dev, 16, vocab=vocab)
        trainer = GradientDescentTrainer(
            model,
            optimizer=torch.optim.Adam(model.parameters(), lr=lr),
            data_loader=train_loader,
            validation_data_loader=dev_loader,
            num_epochs=3,
            validation_metric="+accuracy",
            callbacks=[AllenNLPPruningCallback(trial, "validation_accuracy")],
        )
        return trainer.train()["best_validation_accuracy"]

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.55, n_warmup_steps=1))
    study.enqueue_trial({"embedding_dim": 16, "lr": 0.1})
    study.enqueue_trial({"embedding_dim": 8, "lr": 0.001})
    study.optimize(objective, n_trials=2)

    learning, stuck = study.trials
    assert learning.state == TrialState.COMPLETE
    assert sorted(learning.intermediate_values) == [0, 1, 2]
    assert learning.value == max(learning.intermediate_values.values())
    assert stuck.state == TrialState.PRUNED
    first_below = min(step for step, value in stuck.intermediate_values.items() if step >= 1 and value < 0.55)
    assert max(stuck.intermediate_values) == first_below
