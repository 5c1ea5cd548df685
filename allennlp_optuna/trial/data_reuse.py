"""Reusing a study's data across trials: read each dataset and build the vocabulary once.

Most trials of a study read the same files with the same dataset reader and build the same
vocabulary; only the model and optimizer change. Reading and vocabulary building can cost more
than an epoch (on the guide's IMDB data, about 17 s a trial), so :func:`reusing_data` keeps
them in memory for the next trial *when they are provably the same*:

- the vocabulary is reused when the trial's evaluated ``dataset_reader``,
  ``validation_dataset_reader``, ``vocabulary``, ``datasets_for_vocab_creation``,
  ``evaluate_on_test`` and data paths are identical to an earlier trial's, the files unchanged
  on disk (same size and modification time);
- a file's instances are reused when, in addition to that, the reader is the same (instances
  are indexed in place, so they are shared only between trials that index them alike).

Anything else that differs (a hyperparameter inside the reader or the vocabulary, another data
file) is simply a different key: nothing is reused. Reuse is skipped altogether where instances
cross process boundaries (``distributed`` training, data loaders with ``num_workers``).

The trial's ``config.json`` and ``model.tar.gz`` are exactly what ``allennlp train`` writes: the
reuse works by temporarily wrapping the reader and vocabulary types in AllenNLP's registry while
``train_model`` runs, never by rewriting the configuration.
"""
import inspect
import json
import logging
import os
import pickle
from contextlib import contextmanager
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from allennlp.common import Params
from allennlp.data import DatasetReader, Instance, Vocabulary

from allennlp_optuna.core.compat import registry

logger = logging.getLogger(__name__)

_DATA_KEYS = (
    "dataset_reader",
    "validation_dataset_reader",
    "train_data_path",
    "validation_data_path",
    "test_data_path",
    "evaluate_on_test",
    "datasets_for_vocab_creation",
    "vocabulary",
)


class DataCache:
    """Instances and vocabularies kept between the trials of one process."""

    def __init__(self) -> None:
        self.instances: Dict[Tuple[str, str, str], List[Instance]] = {}
        self.vocabularies: Dict[str, bytes] = {}
        """Pickled: each trial unpickles its own copy (a model may extend its vocabulary), which
        is several times faster than ``copy.deepcopy``."""
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        self.instances.clear()
        self.vocabularies.clear()


CACHE = DataCache()
"""The process-wide cache used by :func:`reusing_data`."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _file_stamp(path: Any) -> str:
    """Identify a data file's content cheaply: its path, size and modification time."""
    if isinstance(path, str) and os.path.exists(path):
        stat = os.stat(path)
        return f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}"
    return _canonical(path)


def _reuse_blocker(config: Dict[str, Any]) -> Optional[str]:
    """Why this configuration's data must not be shared in memory, or ``None``."""
    if config.get("distributed") is not None:
        return "distributed training reads data in worker processes"
    for loader in ("data_loader", "validation_data_loader"):
        if isinstance(config.get(loader), dict) and config[loader].get("num_workers", 0):
            return f"{loader}.num_workers reads data in worker processes"
    reader = config.get("dataset_reader")
    if not isinstance(reader, dict) or not isinstance(reader.get("type"), str):
        return "dataset_reader has no explicit type"
    validation = config.get("validation_dataset_reader")
    if isinstance(validation, dict) and validation.get("type") == reader["type"] and validation != reader:
        return "dataset_reader and validation_dataset_reader share a type but differ"
    return None


@contextmanager
def reusing_data(params: Params, cache: DataCache = CACHE) -> Iterator[None]:
    """While this context is open, ``train_model(params, ...)`` reuses earlier trials' data.

    Args:
        params: the trial's configuration, exactly as it is passed to ``train_model``.
        cache: where instances and vocabularies are kept (the process-wide one by default).
    """
    config = params.as_dict(quiet=True)
    blocker = _reuse_blocker(config)
    if blocker is not None:
        logger.info("Not reusing data between trials: %s.", blocker)
        yield
        return
    data_config = {key: config.get(key) for key in _DATA_KEYS}
    for key in ("train_data_path", "validation_data_path", "test_data_path"):
        data_config[key] = _file_stamp(data_config[key])
    vocabulary_key = _canonical(data_config)

    swaps = []
    readers = [config[k] for k in ("dataset_reader", "validation_dataset_reader") if isinstance(config.get(k), dict)]
    for reader_config in {_canonical(reader): reader for reader in readers}.values():
        entry = _caching_reader_entry(DatasetReader, reader_config, vocabulary_key, cache)
        swaps.append(_swap(DatasetReader, reader_config["type"], entry))
    vocabulary_type = (config.get("vocabulary") or {}).get("type", Vocabulary.default_implementation)
    if vocabulary_type == "from_instances":
        swaps.append(_swap(Vocabulary, "from_instances", (_caching_vocabulary_class(vocabulary_key, cache), "from_instances")))
    try:
        yield
    finally:
        for entries, name, original in reversed(swaps):
            entries[name] = original


def _swap(base: type, name: str, entry: Tuple[type, Optional[str]]) -> Tuple[Dict[str, Any], str, Any]:
    entries = registry(base)
    original = entries[name]
    entries[name] = entry
    return entries, name, original


def _caching_reader_entry(
    base: type, reader_config: Dict[str, Any], vocabulary_key: str, cache: DataCache
) -> Tuple[type, Optional[str]]:
    """A registry entry building the user's reader class with a caching ``read``.

    Instances are indexed in place, and fields that hold indices no longer count themselves
    into a new vocabulary (a ``LabelField`` with an id is skipped); so instances are shared
    only between trials with the same vocabulary configuration, which index them alike.
    """
    reader_class, constructor = registry(base)[reader_config["type"]]
    reader_key = _canonical(reader_config)

    def read(self: DatasetReader, file_path: Any) -> Iterable[Instance]:
        key = (reader_key, _file_stamp(file_path), vocabulary_key)
        instances = cache.instances.get(key)
        if instances is None:
            cache.misses += 1
            instances = list(reader_class.read(self, file_path))
            cache.instances[key] = instances
        else:
            cache.hits += 1
        return iter(instances)

    caching_class = type(reader_class.__name__, (reader_class,), {"read": read, "__module__": reader_class.__module__})
    return caching_class, constructor


def _caching_vocabulary_class(vocabulary_key: str, cache: DataCache) -> type:
    class CachedVocabulary(Vocabulary):
        @classmethod
        def from_instances(cls, instances: Iterable[Instance], **kwargs: Any) -> Vocabulary:  # type: ignore[override]
            cached = cache.vocabularies.get(vocabulary_key)
            if cached is None:
                vocabulary = Vocabulary.from_instances(instances, **kwargs)
                cache.vocabularies[vocabulary_key] = pickle.dumps(vocabulary, protocol=pickle.HIGHEST_PROTOCOL)
                return vocabulary
            return pickle.loads(cached)

    # AllenNLP's from_params reads the constructor's signature to know which keys it accepts.
    CachedVocabulary.from_instances.__func__.__signature__ = inspect.signature(  # type: ignore[attr-defined]
        Vocabulary.from_instances.__func__  # type: ignore[attr-defined]
    )
    return CachedVocabulary
