"""Every data file a config reads is checked before the study: for each run and each categorical choice."""
from pathlib import Path

import pytest
from allennlp.common.checks import ConfigurationError

from allennlp_optuna.study.data_paths import check_data_paths, check_study_data
from allennlp_optuna.study.repeats import RepeatPlan
from allennlp_optuna.study.search_space import SearchSpace

SPACE = SearchSpace.from_entries([
    {"type": "float", "attributes": {"name": "lr", "low": 0.01, "high": 0.1}},
    {"type": "categorical", "attributes": {"name": "corpus", "choices": ["news", "web"]}},
])


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("train_news_0.jsonl", "train_news_1.jsonl", "train_web_0.jsonl", "shard_0.jsonl", "dev.tar.gz"):
        (tmp_path / name).write_text("{}\n")
    return tmp_path


def config(tmp_path: Path, train: str) -> str:
    path = tmp_path / "config.jsonnet"
    path.write_text(f"{{train_data_path: {train}, validation_data_path: 'dev.tar.gz!dev.jsonl', model: {{}}}}")
    return str(path)


def test_a_data_path_a_categorical_choice_reads_is_checked_for_every_choice(data: Path) -> None:
    train = "'train_' + std.extVar('corpus') + '_' + std.extVar('fold') + '.jsonl'"

    check_study_data(config(data, train), SPACE, RepeatPlan.parse(repeat="fold=0"))
    with pytest.raises(ConfigurationError, match=r"^train_data_path train_web_1.jsonl does not exist \(for fold=1, "
                                                 r"corpus=web\)$"):
        check_study_data(config(data, train), SPACE, RepeatPlan.parse(seeds=2, repeat="fold=0,1"))


@pytest.mark.parametrize("paths", [
    {"train_data_path": "shard_*.jsonl"},
    {"train_data_path": "https://example.com/train.jsonl"},
    {"train_data_path": {"news": "train_news_0.jsonl", "web": "train_web_0.jsonl"}},
    {"validation_data_path": "dev.tar.gz!dev.jsonl", "test_data_path": "."},
])
def test_globs_urls_archives_directories_and_multi_task_paths_that_are_there_pass(paths: dict, data: Path) -> None:
    check_data_paths(paths)


@pytest.mark.parametrize("paths, message", [
    ({"train_data_path": "shards_*.jsonl"}, "train_data_path shards_*.jsonl does not exist"),
    ({"train_data_path": {"web": "train_web_2.jsonl"}}, "train_data_path train_web_2.jsonl does not exist"),
    ({"validation_data_path": "dev.zip!dev.jsonl"}, "validation_data_path dev.zip!dev.jsonl does not exist"),
])
def test_paths_that_are_not_there_are_named(paths: dict, message: str, data: Path) -> None:
    with pytest.raises(ConfigurationError, match=f"^{message.replace('*', '[*]')}$"):
        check_data_paths(paths)
