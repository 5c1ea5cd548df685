"""Reusing instances and vocabulary between trials changes speed, never results."""
from pathlib import Path
from typing import Dict, List

import optuna
import pytest
from allennlp.data import DatasetReader, Vocabulary

from allennlp_optuna.trial.data_reuse import CACHE
from allennlp_optuna.tuning import tune
from tests.conftest import CONFIG, HPARAMS, read_json, write_json

SEEDED_TPE = {"sampler": {"type": "TPESampler", "attributes": {"seed": 11}}}
UNSTABLE_METRICS = ("training_duration", "epoch_duration", "memory_MB", "training_start_epoch")


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    CACHE.clear()
    CACHE.hits = CACHE.misses = 0


def stable_metrics(trial: optuna.trial.FrozenTrial) -> Dict[str, float]:
    metrics = read_json(Path(trial.user_attrs["serialization_dir"]) / "metrics.json")
    return {k: v for k, v in metrics.items() if not any(u in k for u in UNSTABLE_METRICS)}


def run(
    workdir: Path, name: str, reuse_data: bool, config: Path = CONFIG, hparams: Path = HPARAMS, n_trials: int = 3
) -> optuna.Study:
    settings = write_json(workdir / "optuna.json", SEEDED_TPE)
    return tune(
        str(config),
        str(hparams),
        str(workdir / name),
        study_name=name,
        storage=f"sqlite:///{workdir / 'study.db'}",
        n_trials=n_trials,
        optuna_param_path=str(settings),
        reuse_data=reuse_data,
    )


def test_reuse_gives_the_same_metrics_as_reading_every_time(workdir: Path) -> None:
    reused = run(workdir, "reused", reuse_data=True)
    assert (CACHE.misses, CACHE.hits) == (2, 4)  # train + dev read once, then served twice each
    fresh = run(workdir, "fresh", reuse_data=False)

    assert [t.params for t in reused.trials] == [t.params for t in fresh.trials]
    assert [t.value for t in reused.trials] == [t.value for t in fresh.trials]
    assert [stable_metrics(t) for t in reused.trials] == [stable_metrics(t) for t in fresh.trials]
    for reused_trial, fresh_trial in zip(reused.trials, fresh.trials):
        reused_dir = Path(reused_trial.user_attrs["serialization_dir"])
        fresh_dir = Path(fresh_trial.user_attrs["serialization_dir"])
        assert read_json(reused_dir / "config.json") == read_json(fresh_dir / "config.json")
        assert (reused_dir / "vocabulary" / "tokens.txt").read_text() == (
            fresh_dir / "vocabulary" / "tokens.txt"
        ).read_text()


def test_a_hyperparameter_inside_the_reader_prevents_reuse(workdir: Path) -> None:
    config = workdir / "reader_param.jsonnet"
    config.write_text(
        f"local base = import '{CONFIG}';\n"
        "base + { dataset_reader+: { max_sequence_length: std.parseInt(std.extVar('max_len')) } }\n"
    )
    hparams: List[dict] = read_json(HPARAMS) + [
        {"type": "categorical", "attributes": {"name": "max_len", "choices": [3, 5, 7]}}
    ]
    hparams_file = write_json(workdir / "hparams_reader.json", hparams)

    reused = run(workdir, "reused", reuse_data=True, config=config, hparams=hparams_file)
    fresh = run(workdir, "fresh", reuse_data=False, config=config, hparams=hparams_file)

    lengths = [t.params["max_len"] for t in reused.trials]
    assert CACHE.misses == 2 * len(set(lengths))
    assert [t.value for t in reused.trials] == [t.value for t in fresh.trials]
    for trial in reused.trials:
        config_json = read_json(Path(trial.user_attrs["serialization_dir"]) / "config.json")
        assert config_json["dataset_reader"]["max_sequence_length"] == trial.params["max_len"]


def test_a_hyperparameter_inside_the_vocabulary_gets_its_own_instances(workdir: Path) -> None:
    config = workdir / "vocabulary_param.jsonnet"
    config.write_text(
        f"local base = import '{CONFIG}';\n"
        "base + { vocabulary: { min_count: { tokens: std.parseInt(std.extVar('min_count')) } } }\n"
    )
    hparams = write_json(
        workdir / "hparams_vocabulary.json",
        read_json(HPARAMS) + [{"type": "categorical", "attributes": {"name": "min_count", "choices": [1, 3]}}],
    )

    reused = run(workdir, "reused", reuse_data=True, config=config, hparams=hparams, n_trials=5)
    fresh = run(workdir, "fresh", reuse_data=False, config=config, hparams=hparams, n_trials=5)

    assert len({t.params["min_count"] for t in reused.trials}) == 2  # both vocabularies were used
    assert (CACHE.misses, CACHE.hits) == (4, 6)  # train and dev read once per vocabulary
    assert [t.value for t in reused.trials] == [t.value for t in fresh.trials]
    assert [stable_metrics(t) for t in reused.trials] == [stable_metrics(t) for t in fresh.trials]


def test_the_registry_is_restored_after_each_trial(workdir: Path) -> None:
    reader_entry = DatasetReader.resolve_class_name("text_classification_json")
    vocabulary_entry = Vocabulary.resolve_class_name("from_instances")

    run(workdir, "reused", reuse_data=True)

    assert DatasetReader.resolve_class_name("text_classification_json") == reader_entry
    assert Vocabulary.resolve_class_name("from_instances") == vocabulary_entry
