"""Running one trial: evaluate the config with the trial's values, train, return the metric.

This replaces Optuna's removed ``optuna.integration.AllenNLPExecutor`` with the same
signature, so the AllenNLP guide's scripts work with only their import line changed::

    from allennlp_optuna import AllenNLPExecutor

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("lr", 5e-3, 5e-1, log=True)
        executor = AllenNLPExecutor(
            trial=trial,
            config_file="./config/imdb_optuna.jsonnet",
            serialization_dir=f"./result/optuna/{trial.number}",
            metrics="best_validation_accuracy",
        )
        return executor.run()
"""
import json
import logging
import os
from contextlib import ExitStack, contextmanager
from typing import Any, Dict, Iterator, List, Optional, Union

import optuna
from torch.multiprocessing import ProcessRaisedException
from allennlp.commands.train import train_model
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError

from allennlp_optuna.compat import archive_skipped
from allennlp_optuna.config import load_params
from allennlp_optuna.data_reuse import reusing_data
from allennlp_optuna.memory import release_training_memory
from allennlp_optuna.metric_check import missing_metric_message, with_metric_check
from allennlp_optuna.pruning import (
    has_pruning_callback,
    monitored_metric,
    raise_worker_failure,
    storage_url,
    with_pruning_callback,
)
from allennlp_optuna.redaction import storage_in_environment
from allennlp_optuna.start_method import data_loaders_without_fork
from allennlp_optuna.trial_attrs import FAIL_REASON_ATTR, METRICS_FILE, SERIALIZATION_DIR_ATTR  # noqa: F401 (re-exported)


class AllenNLPExecutor:
    """Train an AllenNLP model with the values an Optuna trial has suggested.

    Args:
        trial: the trial whose ``params`` become the config's ``std.extVar`` values.
        config_file: path to the Jsonnet training config.
        serialization_dir: where AllenNLP writes the model, logs and ``metrics.json``.
        metrics: the key of ``metrics.json`` to return, e.g. ``"best_validation_accuracy"``.
        include_package: packages to import in distributed training workers.
        force: overwrite ``serialization_dir`` if it exists (as ``allennlp train -f``).
        file_friendly_logging: as ``allennlp train --file-friendly-logging``.
        overrides: a JSON string or dict applied after evaluation, as ``allennlp train -o``.
        reuse_data: reuse instances and vocabulary of earlier trials in this process when the
            data configuration is identical (see :mod:`allennlp_optuna.data_reuse`).
        add_pruning_callback: add ``{type: 'optuna_pruner'}`` to ``trainer.callbacks`` when the
            config lists none (an ``optuna_pruner`` entry that it lists is always filled in).
        archive: write ``model.tar.gz`` as ``allennlp train`` does; with ``False`` the trial
            directory keeps everything else (``allennlp tune`` archives only the best trial, at
            the end, see :func:`allennlp_optuna.best.archive_best_trial`).
        release_memory: free the training's memory when :meth:`run` returns (``allennlp tune``
            does it in a study callback instead, see :mod:`allennlp_optuna.memory`).
        check_metric: stop after the first epoch when ``metrics`` is not among its metrics
            (see :mod:`allennlp_optuna.metric_check`) instead of after the whole training.
    """

    def __init__(
        self,
        trial: optuna.Trial,
        config_file: str,
        serialization_dir: str,
        metrics: str = "best_validation_accuracy",
        *,
        include_package: Optional[List[str]] = None,
        force: bool = False,
        file_friendly_logging: bool = False,
        overrides: Union[str, Dict[str, Any]] = "",
        reuse_data: bool = False,
        add_pruning_callback: bool = False,
        archive: bool = True,
        release_memory: bool = True,
        check_metric: bool = False,
    ) -> None:
        self.trial = trial
        self.config_file = config_file
        self.serialization_dir = serialization_dir
        self.metrics = metrics
        self.include_package = include_package or []
        self.force = force
        self.file_friendly_logging = file_friendly_logging
        self.overrides = overrides
        self.reuse_data = reuse_data
        self.add_pruning_callback = add_pruning_callback
        self.archive = archive
        self.release_memory = release_memory
        self.check_metric = check_metric

    def params(self) -> Params:
        """The trial's training configuration, as ``train_model`` receives it."""
        params = load_params(self.config_file, self.trial.params, self.overrides)
        if self.check_metric:
            params = with_metric_check(params, self.metrics)
        return with_pruning_callback(params, self.trial, monitored_metric(self.metrics), self.add_pruning_callback)

    def run(self) -> float:
        """Train and return the value of ``metrics`` from the trial's ``metrics.json``."""
        params = self.params()
        data_loaders_without_fork(params)
        self.trial.set_user_attr(SERIALIZATION_DIR_ATTR, os.path.abspath(self.serialization_dir))
        try:
            with ExitStack() as stack:
                stack.enter_context(own_log_handlers())
                if has_pruning_callback(params):
                    stack.enter_context(storage_in_environment(storage_url(self.trial.study)))
                if self.reuse_data:
                    stack.enter_context(reusing_data(params))
                if not self.archive:
                    stack.enter_context(archive_skipped())
                train_model(
                    params,
                    self.serialization_dir,
                    force=self.force,
                    include_package=self.include_package,
                    file_friendly_logging=self.file_friendly_logging,
                    return_model=False,
                )
        except ProcessRaisedException as error:  # distributed training: a worker raised
            raise_worker_failure(error)
        finally:
            if self.release_memory:
                release_training_memory()
        return read_metric(self.serialization_dir, self.metrics)


def read_metric(serialization_dir: str, metric: str) -> float:
    """Read one value from ``SERIALIZATION_DIR/metrics.json``; name the keys if it is absent."""
    path = os.path.join(serialization_dir, METRICS_FILE)
    try:
        with open(path, encoding="utf-8") as file:
            metrics = json.load(file)
    except FileNotFoundError:
        raise ConfigurationError(f"training wrote no {path}; see {os.path.join(serialization_dir, 'out.log')}")
    if metric not in metrics:
        raise ConfigurationError(missing_metric_message(metric, path, metrics))
    return float(metrics[metric])


@contextmanager
def own_log_handlers() -> Iterator[None]:
    """Give the trial AllenNLP's logging set-up, then put the caller's back.

    ``train_model`` replaces the root logger's handlers with ones writing to the trial's
    ``out.log``; without this, later trials' and the study's messages would land in an
    earlier trial's log, and every trial would leave an open file behind.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
