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
import statistics
from contextlib import ExitStack, contextmanager
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import optuna
from torch.multiprocessing import ProcessRaisedException
from allennlp.commands.train import train_model
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError

from allennlp_optuna.core.compat import archive_skipped
from allennlp_optuna.study.config import load_params, remove_pruning_callbacks
from allennlp_optuna.study.settings import TrainingSettings
from allennlp_optuna.study.constraints import ConstraintError, Constraints, record_constraints
from allennlp_optuna.trial.data_reuse import reusing_data
from allennlp_optuna.trial.memory import release_training_memory
from allennlp_optuna.trial.callbacks.metric_check import CONSTRAINT_FLAG, METRICS_FLAG, missing_metric_message, with_metric_check
from allennlp_optuna.study.objectives import NUM_PARAMETERS, ObjectiveError, Objectives, metric_value, monitored_metric
from allennlp_optuna.trial.callbacks.parameter_count import with_parameter_count
from allennlp_optuna.trial.callbacks.pruning import (
    RepeatedRun,
    has_pruning_callback,
    raise_worker_failure,
    storage_url,
    with_pruning_callback,
)
from allennlp_optuna.core.redaction import storage_in_environment
from allennlp_optuna.study.repeats import RepeatPlan, Run, mean_and_std
from allennlp_optuna.faults.resume import RunState, adopt_run
from allennlp_optuna.parallel.start_method import data_loaders_without_fork
from allennlp_optuna.core.trial_attrs import (
    METRICS_FILE,
    RESUMED_ATTR,
    RUNS_ATTR,
    SERIALIZATION_DIR_ATTR,
    VALUES_STD_ATTR,
)


class TrialExecutor:
    """Train one trial's config with AllenNLP's ``train_model`` and return its values, as ``allennlp tune`` does.

    Args:
        trial: the trial whose ``params`` become the config's ``std.extVar`` values.
        training: what every trial of the study trains with (the config, objectives, constraints,
            repeats, overrides...; see :class:`~allennlp_optuna.study.settings.TrainingSettings`).
        serialization_dir: where AllenNLP writes the model, logs and ``metrics.json``.
        force: overwrite ``serialization_dir`` if it exists (as ``allennlp train -f``).
        add_pruning_callback: add ``{type: 'optuna_pruner'}`` to ``trainer.callbacks`` when the
            config lists none (an ``optuna_pruner`` entry that it lists is always filled in).
        release_memory: free the training's memory when :meth:`run` returns (``allennlp tune``
            does it in a study callback instead, see :mod:`allennlp_optuna.trial.memory`).
        resume_from: the serialization directory of a killed trial with the same parameters:
            training continues from its last epoch checkpoint (its finished runs are read, not
            trained again) when its config equals this one (see :mod:`allennlp_optuna.faults.resume`).
    """

    def __init__(
        self,
        trial: optuna.Trial,
        training: TrainingSettings,
        serialization_dir: str,
        *,
        force: bool = False,
        add_pruning_callback: bool = False,
        release_memory: bool = True,
        resume_from: Optional[str] = None,
    ) -> None:
        self.trial = trial
        self.training = training
        self.serialization_dir = serialization_dir
        self.force = force
        self.add_pruning_callback = add_pruning_callback
        self.release_memory = release_memory
        self.resume_from = resume_from

    def params(self, run: Optional[Run] = None, earlier_runs: Sequence[str] = ()) -> Params:
        """The trial's training configuration (of one ``run`` of it), as ``train_model`` receives it.

        Args:
            run: with ``seeds`` or ``repeat``, the run whose seeds and ext vars to use.
            earlier_runs: the serialization directories of the trial's runs before ``run``; the
                pruning callback averages their per-epoch values with this run's.
        """
        values = {**self.trial.params, **(run.ext_vars if run else {})}
        params = load_params(self.training.config_file, values, self.training.overrides)
        if run is not None:
            for key, seed in run.seeds(params.as_dict(quiet=True)).items():
                params[key] = seed
        keys = self.training.objectives.keys
        if NUM_PARAMETERS in keys or NUM_PARAMETERS in self.training.constraints.keys:
            params = with_parameter_count(params)
        if self.training.check_metrics:
            for key in keys:
                params = with_metric_check(params, key)
            for key in self.training.constraints.keys:
                params = with_metric_check(params, key, CONSTRAINT_FLAG)
        if len(keys) > 1:  # Optuna cannot prune multi-objective trials
            return Params(remove_pruning_callbacks(params.as_dict(quiet=True)))
        repeated = None if run is None else RepeatedRun(list(earlier_runs), run.index * _num_epochs(params))
        return with_pruning_callback(
            params, self.trial, monitored_metric(keys[0]), self.add_pruning_callback, repeated
        )

    def run(self) -> Union[float, List[float]]:
        """Train and return the value of ``metrics`` from the trial's ``metrics.json``.

        With several comma-separated ``metrics`` keys, their values (a list, for a
        multi-objective study); with ``seeds`` or ``repeat``, the means over the runs.
        """
        self.trial.set_user_attr(SERIALIZATION_DIR_ATTR, os.path.abspath(self.serialization_dir))
        runs = self.training.repeats.runs()
        values = self._run_repeats(runs) if runs else self._train(self.params(), self.serialization_dir, self.resume_from)
        if self.training.constraints:
            directories = [os.path.join(self.serialization_dir, run.name) for run in runs] or [self.serialization_dir]
            record_constraints(self.trial, self.training.constraints, self._constraint_values(directories))
        return values[0] if len(values) == 1 else values

    def _constraint_values(self, directories: Sequence[str]) -> Dict[str, float]:
        """The constrained keys' values in the runs' ``metrics.json``: their means over the runs."""
        return {
            key: statistics.fmean(read_metric(directory, key, CONSTRAINT_FLAG) for directory in directories)
            for key in self.training.constraints.keys
        }

    def _run_repeats(self, runs: List[Run]) -> List[float]:
        """Train every run in ``trial_N/<run>``; record each run's values, return their means."""
        records: List[Dict[str, Any]] = []
        directories = [os.path.join(self.serialization_dir, run.name) for run in runs]
        for run, directory in zip(runs, directories):
            resume_from = os.path.join(self.resume_from, run.name) if self.resume_from else None
            values = self._train(self.params(run, directories[: run.index]), directory, resume_from)
            records.append({"run": run.name, "values": values})
            self.trial.set_user_attr(RUNS_ATTR, records)
        means, stds = mean_and_std([record["values"] for record in records])
        self.trial.set_user_attr(VALUES_STD_ATTR, stds)
        return means

    def _train(self, params: Params, serialization_dir: str, resume_from: Optional[str] = None) -> List[float]:
        """Train ``params`` in ``serialization_dir`` (continuing ``resume_from``'s training if it can);
        the values of the keys from its ``metrics.json``."""
        data_loaders_without_fork(params)
        resumed = RunState.FRESH
        if resume_from and not self.force:
            resumed = adopt_run(resume_from, serialization_dir, params)
            if resumed is not RunState.FRESH:
                self.trial.set_user_attr(RESUMED_ATTR, os.path.abspath(str(self.resume_from)))
        if resumed is RunState.FINISHED:
            return [read_metric(serialization_dir, key) for key in self.training.objectives.keys]
        try:
            with ExitStack() as stack:
                stack.enter_context(own_log_handlers())
                if has_pruning_callback(params):
                    stack.enter_context(storage_in_environment(storage_url(self.trial.study)))
                if self.training.reuse_data:
                    stack.enter_context(reusing_data(params))
                if not self.training.archive:
                    stack.enter_context(archive_skipped())
                train_model(
                    params,
                    serialization_dir,
                    force=self.force,
                    recover=resumed is RunState.CHECKPOINT,
                    include_package=list(self.training.include_package),
                    file_friendly_logging=self.training.file_friendly_logging,
                    return_model=False,
                )
        except ProcessRaisedException as error:  # distributed training: a worker raised
            raise_worker_failure(error)
        finally:
            if self.release_memory:
                release_training_memory()
        return [read_metric(serialization_dir, key) for key in self.training.objectives.keys]


class AllenNLPExecutor(TrialExecutor):
    """Train an AllenNLP model with the values an Optuna trial has suggested (the guide's executor).

    This replaces Optuna's removed ``optuna.integration.AllenNLPExecutor`` with the same
    signature; the keyword arguments after it give a script what ``allennlp tune``'s options give.

    Args:
        trial: the trial whose ``params`` become the config's ``std.extVar`` values.
        config_file: path to the Jsonnet training config.
        serialization_dir: where AllenNLP writes the model, logs and ``metrics.json``.
        metrics: the key of ``metrics.json`` to return, e.g. ``"best_validation_accuracy"``, or
            several separated by commas (their values are returned as a list, for a
            multi-objective study; see :mod:`allennlp_optuna.study.objectives`).
        include_package: packages to import in distributed training workers.
        force: overwrite ``serialization_dir`` if it exists (as ``allennlp train -f``).
        file_friendly_logging: as ``allennlp train --file-friendly-logging``.
        overrides: a JSON string or dict applied after evaluation, as ``allennlp train -o``.
        reuse_data: reuse instances and vocabulary of earlier trials in this process when the
            data configuration is identical (see :mod:`allennlp_optuna.trial.data_reuse`).
        add_pruning_callback: see :class:`TrialExecutor`.
        archive: write ``model.tar.gz`` as ``allennlp train`` does.
        release_memory: see :class:`TrialExecutor`.
        check_metric: stop after the first epoch when ``metrics`` is not among its metrics
            (see :mod:`allennlp_optuna.trial.callbacks.metric_check`) instead of after the whole training.
        seeds: train ``seeds`` runs with derived seeds in ``serialization_dir/seed_k`` and
            return the means (see :mod:`allennlp_optuna.study.repeats`).
        repeat: ``"NAME=V1,V2,..."``: one run per value of ``std.extVar(NAME)``, in
            ``serialization_dir/NAME_V``; the means are returned.
        resume_from: see :class:`TrialExecutor`.
        constraints: bounds on other ``metrics.json`` keys (``"KEY<=NUMBER"``, ``"KEY>=NUMBER"``);
            after training, each one's violation is recorded on the trial with Optuna's constraint
            support (see :mod:`allennlp_optuna.study.constraints`).
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
        seeds: Optional[int] = None,
        repeat: Optional[str] = None,
        resume_from: Optional[str] = None,
        constraints: Union[None, str, Sequence[str]] = None,
    ) -> None:
        try:
            objectives, parsed_constraints = Objectives.parse(metrics), Constraints.parse(constraints)
        except (ObjectiveError, ConstraintError) as error:
            raise ConfigurationError(str(error))
        training = TrainingSettings(
            config_file, objectives, parsed_constraints, RepeatPlan.parse(seeds, repeat), overrides,
            tuple(include_package or ()), file_friendly_logging, reuse_data, archive, check_metric,
        )
        super().__init__(trial, training, serialization_dir, force=force, add_pruning_callback=add_pruning_callback,
                         release_memory=release_memory, resume_from=resume_from)


def _num_epochs(params: Params) -> int:
    """The trainer's ``num_epochs`` (AllenNLP's default, 20, when the config sets none)."""
    return int(params.as_dict(quiet=True).get("trainer", {}).get("num_epochs", 20))


def read_metric(serialization_dir: str, metric: str, flag: str = METRICS_FLAG) -> float:
    """Read one value from ``SERIALIZATION_DIR/metrics.json``; name the keys if it is absent.

    Durations (``"0:01:02.5"``) are read as seconds (see :func:`~allennlp_optuna.study.objectives.metric_value`).
    ``flag`` is the option that named ``metric`` (``--metrics``, ``--constraint``), for the message.
    """
    path = os.path.join(serialization_dir, METRICS_FILE)
    try:
        with open(path, encoding="utf-8") as file:
            metrics = json.load(file)
    except FileNotFoundError:
        raise ConfigurationError(f"training wrote no {path}; see {os.path.join(serialization_dir, 'out.log')}")
    if metric not in metrics:
        raise ConfigurationError(missing_metric_message(metric, path, metrics, flag))
    try:
        return metric_value(metrics, metric, path)
    except ObjectiveError as error:
        raise ConfigurationError(str(error))


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
