"""The study loop: validate every input, open the study, run trials, summarise.

A trial's value comes from one path: :func:`tune` → :class:`TrialObjective` →
:class:`~allennlp_optuna.executor.AllenNLPExecutor` → ``Params.from_file`` →
AllenNLP ``train_model`` → ``SERIALIZATION_DIR/trial_N/metrics.json``.
"""
import logging
import os
import re
import traceback
from typing import Any, Dict, Optional, Sequence, Union

import optuna
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import import_module_and_submodules

from allennlp_optuna.best import archive_best_trial
from allennlp_optuna.config import check_config, load_params
from allennlp_optuna.enqueue import enqueue_trials, read_enqueued_values
from allennlp_optuna.executor import AllenNLPExecutor
from allennlp_optuna.memory import TrialMemory, frozen_between_trials
from allennlp_optuna.progress import ProgressLine
from allennlp_optuna.pruning import plan_pruning
from allennlp_optuna.report import ReportWriter
from allennlp_optuna.recovery import DEFAULT_HEARTBEAT_INTERVAL
from allennlp_optuna.search_space import SearchSpace
from allennlp_optuna.study import (
    DEFAULT_STORAGE,
    OptunaSettings,
    create_or_join_study,
    default_study_name,
    infer_direction,
)
from allennlp_optuna.trial_attrs import CONFIG_ATTR, FAIL_REASON_ATTR, METRIC_ATTR, SERIALIZATION_DIR_ATTR
from allennlp_optuna.workers import plan_workers, run_workers

logger = logging.getLogger(__name__)

_TRIAL_DIR = re.compile(r"^trial_(\d+)$")

ARCHIVE_BEST = "best"
ARCHIVE_ALL = "all"
ARCHIVE_CHOICES = (ARCHIVE_BEST, ARCHIVE_ALL)
"""Which trials get a ``model.tar.gz``: the study's best, when ``tune`` ends, or every completed
trial as ``allennlp train`` would."""


def trial_directory(serialization_dir: str, trial_number: int) -> str:
    """``SERIALIZATION_DIR/trial_N``: where trial N trains."""
    return os.path.join(serialization_dir, f"trial_{trial_number}")


class TrialObjective:
    """The objective ``study.optimize`` calls: sample, train in ``trial_N``, return the metric.

    A failing trial keeps its traceback in the ``fail_reason`` user attribute. With
    ``archive="best"`` no trial writes ``model.tar.gz`` (``tune`` archives the best one when it
    ends); every trial keeps ``config.json``, ``best.th`` and ``vocabulary/``, which
    ``allennlp evaluate`` and ``allennlp predict`` also accept (pass the directory). A trial's
    memory is freed by the :class:`~allennlp_optuna.memory.TrialMemory` study callback, which
    ``study.optimize`` must be given too.
    """

    def __init__(
        self,
        config_file: str,
        search_space: SearchSpace,
        serialization_dir: str,
        metrics: str,
        include_package: Sequence[str] = (),
        overrides: Union[str, Dict[str, Any]] = "",
        file_friendly_logging: bool = False,
        reuse_data: bool = True,
        add_pruning_callback: bool = False,
        archive: str = ARCHIVE_ALL,
    ) -> None:
        check_archive(archive)
        self.config_file = config_file
        self.search_space = search_space
        self.serialization_dir = serialization_dir
        self.metrics = metrics
        self.include_package = list(include_package)
        self.overrides = overrides
        self.file_friendly_logging = file_friendly_logging
        self.reuse_data = reuse_data
        self.add_pruning_callback = add_pruning_callback
        self.archive = archive

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            self.search_space.suggest(trial)
            return self.executor(trial).run()
        except optuna.TrialPruned:
            raise
        except BaseException:
            trial.set_user_attr(FAIL_REASON_ATTR, traceback.format_exc())
            raise

    def executor(self, trial: optuna.Trial) -> AllenNLPExecutor:
        """The executor that trains ``trial`` in ``trial_N``."""
        return AllenNLPExecutor(
            trial,
            self.config_file,
            trial_directory(self.serialization_dir, trial.number),
            self.metrics,
            include_package=self.include_package,
            file_friendly_logging=self.file_friendly_logging,
            overrides=self.overrides,
            reuse_data=self.reuse_data,
            add_pruning_callback=self.add_pruning_callback,
            archive=self.archive == ARCHIVE_ALL,
            release_memory=False,  # TrialMemory does it after the trial, see allennlp_optuna.memory
        )


def check_archive(archive: str) -> None:
    """Refuse an ``archive`` policy other than :data:`ARCHIVE_CHOICES`."""
    if archive not in ARCHIVE_CHOICES:
        raise ConfigurationError(f"--archive must be one of {', '.join(ARCHIVE_CHOICES)}, got {archive!r}")


def check_trial_directories(study: optuna.Study, serialization_dir: str) -> None:
    """Refuse to start when ``serialization_dir`` holds ``trial_N`` directories of another study.

    A new trial must never train into (and overwrite) a directory it does not own.
    """
    if not os.path.isdir(serialization_dir):
        return
    owned = {
        os.path.abspath(str(t.user_attrs.get(SERIALIZATION_DIR_ATTR)))
        for t in study.get_trials(deepcopy=False)
        if SERIALIZATION_DIR_ATTR in t.user_attrs
    }
    foreign = sorted(
        entry
        for entry in os.listdir(serialization_dir)
        if _TRIAL_DIR.match(entry) and os.path.abspath(os.path.join(serialization_dir, entry)) not in owned
    )
    if foreign:
        raise ConfigurationError(
            f"{serialization_dir} already holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''} "
            f"that study {study.study_name!r} did not write; choose a new --serialization-dir"
        )


def tune(
    config_file: str,
    search_space_file: str,
    serialization_dir: str,
    *,
    study_name: Optional[str] = None,
    storage: str = DEFAULT_STORAGE,
    metrics: str = "best_validation_loss",
    direction: Optional[str] = None,
    n_trials: Optional[int] = None,
    timeout: Optional[float] = None,
    optuna_param_path: Optional[str] = None,
    skip_if_exists: bool = False,
    skip_exception: bool = False,
    include_package: Sequence[str] = (),
    overrides: Union[str, Dict[str, Any]] = "",
    file_friendly_logging: bool = False,
    reuse_data: bool = True,
    enqueue_trial: Sequence[str] = (),
    n_workers: Optional[int] = None,
    devices: Optional[Sequence[int]] = None,
    devices_per_trial: int = 1,
    max_trials: Optional[int] = None,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
    archive: str = ARCHIVE_BEST,
) -> optuna.Study:
    """Tune the hyperparameters of an AllenNLP config; the function behind ``allennlp tune``.

    Every input is validated before the first trial trains. Each trial trains in
    ``serialization_dir/trial_N`` and its value is ``metrics`` from that directory's
    ``metrics.json``.

    Args:
        config_file: Jsonnet config reading hyperparameters with ``std.extVar``.
        search_space_file: the search-space file (see :mod:`allennlp_optuna.search_space`).
        serialization_dir: parent directory of the trials' serialization directories.
        study_name: defaults to the config file's stem.
        storage: an Optuna storage URL; defaults to ``sqlite:///allennlp_optuna.db``.
        metrics: the ``metrics.json`` key to optimise.
        direction: ``"minimize"`` or ``"maximize"``; inferred from ``metrics`` when ``None``.
        n_trials: how many trials this call runs, over all its workers (``None``: until
            ``max_trials``, ``timeout`` or interrupted).
        timeout: stop starting trials after this many seconds.
        optuna_param_path: JSON file naming the sampler and pruner.
        skip_if_exists: join an existing study of the same name instead of refusing.
        skip_exception: record a failing trial as FAIL and go on with the study.
        include_package: packages to import (registrations used by the config).
        overrides: JSON overrides applied to every trial's config, as ``allennlp train -o``.
        file_friendly_logging: as ``allennlp train --file-friendly-logging``; also silences the
            study's progress line.
        reuse_data: reuse instances and vocabulary between trials whose data configuration is
            identical (see :mod:`allennlp_optuna.data_reuse`); results are the same either way.
        enqueue_trial: JSON files of hyperparameter values (e.g. a hand-tuned baseline) that run
            first, in order (see :mod:`allennlp_optuna.enqueue`).
        n_workers: worker processes sharing this call's trials (see :mod:`allennlp_optuna.workers`).
        devices: GPU ids split between the workers, ``devices_per_trial`` each.
        devices_per_trial: GPUs each trial trains on.
        max_trials: study-wide budget: stop when the study, over all workers and machines,
            has this many COMPLETE and PRUNED trials (see :mod:`allennlp_optuna.budget`).
        heartbeat_interval: seconds between a running trial's heartbeats; a trial silent for
            twice as long is failed and retried with the same parameters.
        archive: ``"best"``: when the trials are done, the study's best trial gets its
            ``model.tar.gz`` (no other trial writes one); ``"all"``: every trial writes it.

    Returns:
        The study, with this call's trials added.
    """
    if n_trials is not None and n_trials < 1:
        raise ConfigurationError(f"--n-trials must be at least 1, got {n_trials}")
    if timeout is not None and timeout <= 0:
        raise ConfigurationError(f"--timeout must be a positive number of seconds, got {timeout}")
    if direction is not None and direction not in ("minimize", "maximize"):
        raise ConfigurationError(f"--direction must be 'minimize' or 'maximize', got {direction!r}")
    if max_trials is not None and max_trials < 1:
        raise ConfigurationError(f"--max-trials must be at least 1, got {max_trials}")
    if heartbeat_interval < 1:
        raise ConfigurationError(f"--heartbeat-interval must be at least 1 second, got {heartbeat_interval}")
    check_archive(archive)
    plans = plan_workers(n_workers, devices, devices_per_trial)
    search_space = SearchSpace.from_file(search_space_file)
    settings = OptunaSettings.from_file(optuna_param_path)
    for package in include_package:
        import_module_and_submodules(package)
    check_config(config_file, search_space)
    enqueued = [read_enqueued_values(path, search_space) for path in enqueue_trial]
    example_params = load_params(config_file, search_space.example_values(), overrides)
    add_pruning_callback = plan_pruning(example_params, settings.pruner, config_file)

    if direction is None:
        direction = infer_direction(metrics)
        logger.info("Direction inferred from %r: %s (set --direction to change it).", metrics, direction)
    study_name = study_name or default_study_name(config_file)
    study = create_or_join_study(study_name, storage, direction, settings, join_existing=skip_if_exists)
    check_trial_directories(study, serialization_dir)
    earlier_metric = study.user_attrs.get(METRIC_ATTR, metrics)
    if earlier_metric != metrics:
        raise ConfigurationError(
            f"study {study_name!r} optimizes {earlier_metric}, not {metrics}; pass --metrics {earlier_metric} "
            "or choose another --study-name"
        )
    study.set_user_attr(METRIC_ATTR, metrics)
    study.set_user_attr(CONFIG_ATTR, os.path.abspath(config_file))
    os.makedirs(serialization_dir, exist_ok=True)
    enqueue_trials(study, enqueued)

    objective = TrialObjective(
        config_file,
        search_space,
        serialization_dir,
        metrics,
        include_package=include_package,
        overrides=overrides,
        file_friendly_logging=file_friendly_logging,
        reuse_data=reuse_data,
        add_pruning_callback=add_pruning_callback,
        archive=archive,
    )
    report = ReportWriter(serialization_dir)
    callbacks = [TrialMemory(), report]
    if not file_friendly_logging:
        callbacks.append(ProgressLine(n_trials, timeout, metrics))
    try:
        with frozen_between_trials():
            run_workers(
                study,
                storage,
                objective,
                settings=settings,
                plans=plans,
                n_trials=n_trials,
                max_trials=max_trials,
                timeout=timeout,
                catch=(Exception,) if skip_exception else (),
                heartbeat_interval=heartbeat_interval,
                callbacks=callbacks,
            )
        if archive == ARCHIVE_BEST:
            archive_best_trial(study)
    finally:
        report.write(study)  # also after a trial failed without --skip-exception, or Ctrl-C
    return study
