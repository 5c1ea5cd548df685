"""Memory between trials: what a study keeps is released when it ends; long-lived objects are frozen."""
import gc
from pathlib import Path
from typing import Iterator, List

import pytest

from allennlp_optuna.trial.data_reuse import CACHE
from allennlp_optuna.trial.memory import TrialMemory
from tests.trial.test_data_reuse import run


@pytest.fixture(autouse=True)
def clean_collector() -> Iterator[None]:
    CACHE.clear()
    yield
    CACHE.clear()
    gc.unfreeze()


def test_a_study_releases_its_data_cache_and_frozen_objects_when_it_ends(workdir: Path) -> None:
    CACHE.hits = 0
    study = run(workdir, "reused", reuse_data=True)

    assert len(study.trials) == 3 and CACHE.hits == 4  # the data was reused during the study ...
    assert CACHE.instances == {} and CACHE.vocabularies == {}  # ... and dropped after it
    assert gc.get_freeze_count() == 0  # the collector sees every object again


def test_survivors_are_frozen_after_a_trial_only_when_the_data_cache_grew() -> None:
    gc.unfreeze()
    memory = TrialMemory()
    memory(None, None)  # type: ignore[arg-type]
    frozen = gc.get_freeze_count()
    assert frozen > 0

    made_by_a_trial: List[object] = [object() for _ in range(1000)]
    memory(None, None)  # type: ignore[arg-type]
    assert gc.get_freeze_count() == frozen  # no new data: a trial's objects stay collectable

    CACHE.instances[("reader", "file", "vocabulary")] = []
    memory(None, None)  # type: ignore[arg-type]
    assert gc.get_freeze_count() > frozen
    del made_by_a_trial
