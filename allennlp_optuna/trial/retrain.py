"""Retraining a tuned trial (the best by default) as ``allennlp train`` would train it, and its plain config.

The config is evaluated with the trial's values through the same path as during tuning
(:func:`~allennlp_optuna.study.config.load_params`), minus ``optuna_pruner`` callbacks, which need a
live trial. With the config's seeds on CPU, retraining trial N reproduces its metrics.

The guide's ``dump_best_config`` works with only its import changed::

    from allennlp_optuna import dump_best_config

    study = optuna.load_study(storage="sqlite:///result/trial.db", study_name="optuna_allennlp")
    dump_best_config("./imdb_optuna.jsonnet", "./best_config.json", study)

``best_config.json`` has every ``std.extVar`` resolved and no ``optuna_pruner`` callback,
so ``allennlp train best_config.json -s DIR`` trains it directly.
"""
import json
import logging
import os
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import optuna
from allennlp.commands.train import train_model
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from optuna.trial import FrozenTrial

from allennlp_optuna.core.trial_attrs import METRICS_FILE, SERIALIZATION_DIR_ATTR
from allennlp_optuna.output.best_params import describe_trial
from allennlp_optuna.trial.choose import chosen_trial, require_best_trial
from allennlp_optuna.study.config import resolved_config, write_config
from allennlp_optuna.study.objectives import NUM_PARAMETERS
from allennlp_optuna.study.data_paths import check_data_paths
from allennlp_optuna.study.preflight import check_named, check_serialization_dir
from allennlp_optuna.study.record import StoredStudy
from allennlp_optuna.study.repeats import Run
from allennlp_optuna.trial.callbacks.parameter_count import with_parameter_count
from allennlp_optuna.trial.memory import release_training_memory

logger = logging.getLogger(__name__)

Overrides = Union[str, Dict[str, Any]]


def check_retrain_dir(serialization_dir: str, stored: StoredStudy, recover: bool, force: bool) -> None:
    """Refuse a directory that retraining would wrongly overwrite or reuse.

    A non-empty directory needs ``force`` (overwrite) or ``recover`` (resume), not both; the
    directory may never be or contain one of the study's trial directories, which ``force``
    would delete.
    """
    if recover and force:
        raise ConfigurationError("-f/--force and -r/--recover exclude each other; pass one")
    check_named(serialization_dir, "--serialization-dir", "directory", "-s result")  # as tune says it
    target = os.path.abspath(serialization_dir)
    for trial in stored.trials():
        trial_dir = trial.user_attrs.get(SERIALIZATION_DIR_ATTR)
        if trial_dir and (target == trial_dir or trial_dir.startswith(target + os.sep)):
            raise ConfigurationError(
                f"{serialization_dir} holds trial {trial.number}'s directory {trial_dir}; "
                "retrain into a new --serialization-dir"
            )
    advice = None if recover or force else "pass -f to overwrite it or -r to resume its training"
    check_serialization_dir(serialization_dir, nonempty_advice=advice)


def retrain(
    config_file: str,
    serialization_dir: str,
    study: optuna.Study,
    trial_number: Optional[int] = None,
    **options: Any,
) -> Dict[str, Any]:
    """Train ``config_file`` with the values of trial ``trial_number`` of ``study`` (``None``: its best trial),
    as ``allennlp retrain`` does; ``options`` are :func:`retrain_trial`'s (``recover``, ``force``, ...).

    Returns:
        The contents of ``serialization_dir/metrics.json`` (empty after a dry run).
    """
    stored = StoredStudy.read(study)
    return retrain_trial(config_file, serialization_dir, stored, chosen_trial(stored, trial_number), **options)


def retrain_trial(
    config_file: str,
    serialization_dir: str,
    stored: StoredStudy,
    trial: FrozenTrial,
    *,
    recover: bool = False,
    force: bool = False,
    overrides: Overrides = "",
    node_rank: int = 0,
    include_package: Sequence[str] = (),
    dry_run: bool = False,
    file_friendly_logging: bool = False,
    run_index: Optional[int] = None,
) -> Dict[str, Any]:
    """Train ``config_file`` with the values of ``trial`` (see :func:`~allennlp_optuna.trial.choose.chosen_trial`).

    Args:
        config_file: the Jsonnet config the study's trials trained with.
        serialization_dir: where to write the model, as ``allennlp train -s``.
        stored: the tuned study.
        trial: the trial to retrain, one of the study's.
        recover: resume training in ``serialization_dir`` (``allennlp train -r``).
        force: overwrite ``serialization_dir`` (``allennlp train -f``).
        overrides: a JSON string or dict, as ``allennlp train -o``; pass the ones the trials
            trained with to reproduce them.
        node_rank: rank of this node in distributed training.
        include_package: packages distributed training workers import.
        dry_run: build the vocabulary and show dataset statistics without training.
        file_friendly_logging: as ``allennlp train --file-friendly-logging``.
        run_index: of a repeated trial (``--seeds``, ``--repeat``), the run to reproduce
            (its seeds and ext vars); ``None`` reproduces the first.

    Returns:
        The contents of ``serialization_dir/metrics.json`` (empty after a dry run).
    """
    check_retrain_dir(serialization_dir, stored, recover, force)
    _warn_about_another_config(stored, config_file)
    config, run = trial_config(config_file, stored, trial, overrides, run_index)
    check_data_paths(config)
    params = Params(config)
    if NUM_PARAMETERS in (*stored.objectives.keys, *stored.constraints.keys):
        params = with_parameter_count(params)  # so that metrics.json compares with the trial's
    logger.info("Retraining %s", describe_trial(stored, trial))
    if run is not None:
        logger.info("Reproducing run %s of trial %d (--seed-index %d).", run.name, trial.number, run.index)
    try:
        train_model(
            params, serialization_dir, recover=recover, force=force, node_rank=node_rank,
            include_package=list(include_package), dry_run=dry_run, file_friendly_logging=file_friendly_logging,
            return_model=False,
        )
    finally:
        release_training_memory()
    return {} if dry_run else read_metrics(serialization_dir)


def trial_config(
    config_file: str,
    stored: StoredStudy,
    trial: FrozenTrial,
    overrides: Overrides = "",
    run_index: Optional[int] = None,
) -> Tuple[Dict[str, Any], Optional[Run]]:
    """The plain config ``trial`` trained with and, for a repeated trial, the run it reproduces.

    A study tuned with ``--seeds`` or ``--repeat`` trained each trial in several runs; the config
    is that of run ``run_index`` (the first when ``None``): its ``std.extVar`` value and seeds.
    """
    runs = stored.repeats.runs()
    if not runs:
        if run_index is not None:
            raise ConfigurationError(
                f"study {stored.name!r} trained each trial once (no --seeds or --repeat); drop --seed-index"
            )
        return resolved_config(config_file, trial.params, overrides), None
    index = 0 if run_index is None else run_index
    if not 0 <= index < len(runs):
        raise ConfigurationError(
            f"--seed-index {index} is out of range: trial {trial.number} has {len(runs)} runs "
            f"({', '.join(run.name for run in runs)}), numbered from 0"
        )
    run = runs[index]
    config = resolved_config(config_file, {**trial.params, **run.ext_vars}, overrides)
    config.update(run.seeds(config))
    return config, run


def best_config(config_file: str, study: optuna.Study, overrides: Overrides = "") -> Dict[str, Any]:
    """The best trial's training config as a plain dict (see :func:`dump_best_config`)."""
    return resolved_config(config_file, require_best_trial(StoredStudy.read(study)).params, overrides)


def dump_best_config(input_config: str, output_config: str, study: optuna.Study, overrides: Overrides = "") -> None:
    """Write the config of the study's best trial as JSON that ``allennlp train`` accepts.

    Args:
        input_config: the Jsonnet config the trials trained with (reading ``std.extVar``).
        output_config: the JSON file to write.
        study: a study with at least one COMPLETE trial.
        overrides: a JSON string or dict applied as ``allennlp train -o`` would; pass the
            overrides the trials trained with to reproduce them.
    """
    write_config(best_config(input_config, study, overrides), output_config)


def _warn_about_another_config(stored: StoredStudy, config_file: str) -> None:
    if stored.config_file and stored.config_file != os.path.abspath(config_file):
        logger.warning("Study %r was tuned with %s, retraining with %s.", stored.name, stored.config_file, config_file)


def read_metrics(serialization_dir: str) -> Dict[str, Any]:
    """The contents of ``serialization_dir/metrics.json``; empty when training wrote none."""
    metrics_path = os.path.join(serialization_dir, METRICS_FILE)
    if not os.path.isfile(metrics_path):
        return {}
    with open(metrics_path, encoding="utf-8") as file:
        return json.load(file)
