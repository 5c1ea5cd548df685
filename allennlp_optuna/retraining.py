"""Retraining a tuned trial (the best by default) as ``allennlp train`` would train it.

The config is evaluated with the trial's values through the same path as during tuning
(:func:`~allennlp_optuna.config.load_params`), minus ``optuna_pruner`` callbacks, which need a
live trial. With the config's seeds on CPU, retraining trial N reproduces its metrics.
"""
import json
import logging
import os
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import optuna
from allennlp.commands.train import train_model
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.preflight import check_serialization_dir as writable_serialization_dir
from allennlp_optuna.best import describe_trial, require_best_trial
from allennlp_optuna.config import resolved_config
from allennlp_optuna.constraints import Constraints
from allennlp_optuna.memory import release_training_memory
from allennlp_optuna.objectives import NUM_PARAMETERS, split_keys
from allennlp_optuna.parameter_count import with_parameter_count
from allennlp_optuna.repeats import RepeatPlan, Run
from allennlp_optuna.trial_attrs import CONFIG_ATTR, METRIC_ATTR, METRICS_FILE, REPEATS_ATTR, SERIALIZATION_DIR_ATTR

logger = logging.getLogger(__name__)

RETRAINABLE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def trial_to_retrain(study: optuna.Study, trial_number: Optional[int] = None) -> FrozenTrial:
    """Trial ``trial_number`` of the study, or its best trial when ``None``.

    A chosen trial must have finished with all its values sampled (COMPLETE or PRUNED).
    """
    if trial_number is None:
        return require_best_trial(study)
    trials = study.get_trials(deepcopy=False)
    chosen = next((t for t in trials if t.number == trial_number), None)
    if chosen is None:
        numbers = f"0 to {trials[-1].number}" if trials else "none"
        raise ConfigurationError(
            f"study {study.study_name!r} has no trial {trial_number}; its trials are numbered {numbers}"
        )
    if chosen.state not in RETRAINABLE_STATES:
        raise ConfigurationError(
            f"trial {trial_number} of study {study.study_name!r} is {chosen.state.name}; "
            "choose a COMPLETE or PRUNED trial with --trial"
        )
    return chosen


def check_serialization_dir(
    serialization_dir: str, study: optuna.Study, recover: bool, force: bool
) -> None:
    """Refuse a directory that retraining would wrongly overwrite or reuse.

    A non-empty directory needs ``force`` (overwrite) or ``recover`` (resume), not both; the
    directory may never be or contain one of the study's trial directories, which ``force``
    would delete.
    """
    if recover and force:
        raise ConfigurationError("-f/--force and -r/--recover exclude each other; pass one")
    target = os.path.abspath(serialization_dir)
    for trial in study.get_trials(deepcopy=False):
        trial_dir = trial.user_attrs.get(SERIALIZATION_DIR_ATTR)
        if trial_dir and (target == trial_dir or trial_dir.startswith(target + os.sep)):
            raise ConfigurationError(
                f"{serialization_dir} holds trial {trial.number}'s directory {trial_dir}; "
                "retrain into a new --serialization-dir"
            )
    writable_serialization_dir(serialization_dir)
    if os.path.isdir(serialization_dir) and os.listdir(serialization_dir) and not (recover or force):
        raise ConfigurationError(
            f"serialization directory {serialization_dir} is not empty; pass -f to overwrite it "
            "or -r to resume its training"
        )


def retrain(
    config_file: str,
    serialization_dir: str,
    study: optuna.Study,
    trial_number: Optional[int] = None,
    **options: Any,
) -> Dict[str, Any]:
    """Train ``config_file`` with a trial's values; the function behind ``allennlp retrain``.

    Args:
        config_file: the Jsonnet config the study's trials trained with.
        serialization_dir: where to write the model, as ``allennlp train -s``.
        study: the tuned study.
        trial_number: the trial to retrain; ``None`` retrains the best trial.
        options: the keyword arguments of :func:`retrain_trial` (``recover``, ``force``, ...).

    Returns:
        The contents of ``serialization_dir/metrics.json`` (empty after a dry run).
    """
    return retrain_trial(config_file, serialization_dir, study, trial_to_retrain(study, trial_number), **options)


def retrain_trial(
    config_file: str,
    serialization_dir: str,
    study: optuna.Study,
    trial: FrozenTrial,
    *,
    recover: bool = False,
    force: bool = False,
    overrides: Union[str, Dict[str, Any]] = "",
    node_rank: int = 0,
    include_package: Sequence[str] = (),
    dry_run: bool = False,
    file_friendly_logging: bool = False,
    run_index: Optional[int] = None,
) -> Dict[str, Any]:
    """Train ``config_file`` with the values of ``trial`` (see :func:`trial_to_retrain`).

    Args:
        config_file: the Jsonnet config the study's trials trained with.
        serialization_dir: where to write the model, as ``allennlp train -s``.
        study: the tuned study.
        trial: the trial to retrain, one of ``study``'s.
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
    check_serialization_dir(serialization_dir, study, recover, force)
    _warn_about_another_config(study, config_file)
    config, run = trial_config(config_file, study, trial, overrides, run_index)
    params = Params(config)
    counted_keys = [*split_keys(study.user_attrs.get(METRIC_ATTR) or ""), *Constraints.of_study(study).keys]
    if NUM_PARAMETERS in counted_keys:
        params = with_parameter_count(params)  # so that metrics.json compares with the trial's
    logger.info("Retraining %s", describe_trial(study, trial))
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
    study: optuna.Study,
    trial: FrozenTrial,
    overrides: Union[str, Dict[str, Any]] = "",
    run_index: Optional[int] = None,
) -> Tuple[Dict[str, Any], Optional[Run]]:
    """The plain config ``trial`` trained with and, for a repeated trial, the run it reproduces.

    A study tuned with ``--seeds`` or ``--repeat`` trained each trial in several runs; the config
    is that of run ``run_index`` (the first when ``None``): its ``std.extVar`` value and seeds.
    """
    runs = RepeatPlan.from_attr(study.user_attrs.get(REPEATS_ATTR)).runs()
    if not runs:
        if run_index is not None:
            raise ConfigurationError(
                f"study {study.study_name!r} trained each trial once (no --seeds or --repeat); drop --seed-index"
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


def _warn_about_another_config(study: optuna.Study, config_file: str) -> None:
    tuned_config = study.user_attrs.get(CONFIG_ATTR)
    if tuned_config and tuned_config != os.path.abspath(config_file):
        logger.warning("Study %r was tuned with %s, retraining with %s.", study.study_name, tuned_config, config_file)


def read_metrics(serialization_dir: str) -> Dict[str, Any]:
    """The contents of ``serialization_dir/metrics.json``; empty when training wrote none."""
    metrics_path = os.path.join(serialization_dir, METRICS_FILE)
    if not os.path.isfile(metrics_path):
        return {}
    with open(metrics_path, encoding="utf-8") as file:
        return json.load(file)
