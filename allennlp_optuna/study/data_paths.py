"""Checking, before the study, that every data file a config reads is there.

AllenNLP reads ``train_data_path``, ``validation_data_path`` and ``test_data_path`` when a trial
starts training, so a missing file would otherwise fail the first trial from deep inside its file
cache, after the study was created, or fail mid-study when only a later ``--repeat`` value names
it. A config is checked as every trial will evaluate it: for each run of a trial (each
``--repeat`` value and seed) and each choice of a categorical hyperparameter, which a data path
may read too. URLs (``https://``, ``s3://``, ...) are left to AllenNLP's file cache; a glob must
match a file; ``archive.tar.gz!member`` needs the archive.
"""
import glob
import os
from typing import Any, Dict, Iterator, List, Mapping, Tuple, Union

from allennlp.common.checks import ConfigurationError

from allennlp_optuna.study.config import ext_var_value, load_params
from allennlp_optuna.study.repeats import RepeatPlan
from allennlp_optuna.study.search_space import ParamValue, SearchSpace

DATA_PATH_KEYS = ("train_data_path", "validation_data_path", "test_data_path")
"""The config keys whose files AllenNLP's ``train_model`` reads (a path, or a mapping of paths for a
multi-task reader)."""


def check_data_paths(config: Mapping[str, Any], where: str = "") -> None:
    """Refuse a config whose data paths name a local file (or glob, or directory) that does not exist.

    Args:
        config: the evaluated config.
        where: which evaluation it is, for the message (`` (for fold=1)``).
    """
    for key in DATA_PATH_KEYS:
        for path in _paths(config.get(key)):
            if not _exists(path):
                raise ConfigurationError(f"{key} {path} does not exist{where}")


def check_study_data(
    config_file: str, search_space: SearchSpace, repeats: RepeatPlan, overrides: Union[str, Dict[str, Any]] = ""
) -> None:
    """Check the data paths of every config the study's trials will evaluate (:func:`check_data_paths`).

    The config is evaluated for each run (``--repeat`` value, seed) with the search space's example
    values, and once more for each other choice of each categorical hyperparameter.
    """
    checked = set()
    for values, where in _evaluations(search_space, repeats):
        config = load_params(config_file, values, overrides).as_dict(quiet=True)
        paths = tuple((key, path) for key in DATA_PATH_KEYS for path in _paths(config.get(key)))
        if paths not in checked:
            checked.add(paths)
            check_data_paths(config, where)


def _evaluations(search_space: SearchSpace, repeats: RepeatPlan) -> Iterator[Tuple[Dict[str, ParamValue], str]]:
    """The values to evaluate the config with, and how the message names them."""
    example = search_space.example_values()
    variants: List[Dict[str, ParamValue]] = [{}]
    for hyperparameter in search_space.hyperparameters:
        choices = getattr(hyperparameter.distribution, "choices", ())
        variants += [{hyperparameter.name: choice} for choice in choices[1:]]
    runs = [run.ext_vars for run in repeats.runs()] or [{}]
    for ext_vars in dict.fromkeys(tuple(run.items()) for run in runs):
        for variant in variants:
            named = {**dict(ext_vars), **{name: ext_var_value(value) for name, value in variant.items()}}
            where = f" (for {', '.join(f'{name}={value}' for name, value in named.items())})" if named else ""
            yield {**example, **variant, **dict(ext_vars)}, where


def _paths(value: Any) -> List[str]:
    """The paths a data path entry names: a string, or the strings of a mapping or list of them."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [path for item in value.values() for path in _paths(item)]
    if isinstance(value, (list, tuple)):
        return [path for item in value for path in _paths(item)]
    return []


def _exists(path: str) -> bool:
    """Whether AllenNLP would find ``path`` on this machine; a URL is assumed to be there."""
    if "://" in path:
        return True
    local = os.path.expanduser(path.split("!", 1)[0])
    if any(character in local for character in "*?["):
        return bool(glob.glob(local))
    return os.path.exists(local)
