"""The options of one study run, as typed values: parsed once, validated once, passed whole.

``allennlp tune`` reads its command line into :class:`TuneSettings` (:meth:`TuneSettings.from_args`);
a script does the same through :func:`~allennlp_optuna.tuning.tune`'s keyword arguments
(:meth:`TuneSettings.parse`). Strings become typed values there, once: ``--metrics`` and
``--direction`` an :class:`~allennlp_optuna.study.objectives.Objectives`, ``--constraint`` a
:class:`~allennlp_optuna.study.constraints.Constraints`, ``--seeds`` and ``--repeat`` a
:class:`~allennlp_optuna.study.repeats.RepeatPlan`. Every layer after that (the study loop, the
workers, the trial objective and executor) reads the settings object; nothing downstream splits a
string again.

A new option of ``allennlp tune`` is its flag in :mod:`allennlp_optuna.commands.tune` (the flag's
``dest`` is the field's name), one field here (in :class:`TrainingSettings` when every trial's
training reads it, else in :class:`TuneSettings`) and its use.
"""
import argparse
import logging
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Mapping, Optional, Tuple, Type, Union

from allennlp.common.checks import ConfigurationError

from allennlp_optuna.core.errors import did_you_mean
from allennlp_optuna.study.constraints import ConstraintError, Constraints
from allennlp_optuna.study.objectives import ObjectiveError, Objectives, contradicted_directions
from allennlp_optuna.study.repeats import RepeatPlan
from allennlp_optuna.study.storage import DEFAULT_STORAGE, default_study_name, is_sqlite

logger = logging.getLogger(__name__)

ARCHIVE_BEST = "best"
ARCHIVE_ALL = "all"
ARCHIVE_CHOICES = (ARCHIVE_BEST, ARCHIVE_ALL)
"""Which trials get a ``model.tar.gz``: the study's best, when ``tune`` ends, or every completed
trial as ``allennlp train`` would."""

DEFAULT_METRICS = "best_validation_loss"

LAUNCH_LOCAL = "local"
LAUNCH_SLURM = "slurm"
LAUNCHERS = (LAUNCH_LOCAL, LAUNCH_SLURM)
"""Where the workers run: processes on this machine, or tasks of a SLURM job array (see :mod:`allennlp_optuna.cluster`)."""

DEFAULT_HEARTBEAT_INTERVAL = 60
"""Seconds between heartbeats; a trial is stale after twice this (Optuna's default grace period)."""


@dataclass(frozen=True)
class TrainingSettings:
    """What every trial of a study trains with, as the trial executor reads it.

    Args:
        config_file: Jsonnet config reading hyperparameters with ``std.extVar``.
        objectives: the ``metrics.json`` keys to optimise and their directions.
        constraints: bounds on other ``metrics.json`` keys (see :mod:`allennlp_optuna.study.constraints`).
        repeats: the runs each trial trains (``--seeds``, ``--repeat``; see :mod:`allennlp_optuna.study.repeats`).
        overrides: JSON overrides applied to every trial's config, as ``allennlp train -o``.
        include_package: packages to import (registrations used by the config).
        file_friendly_logging: as ``allennlp train --file-friendly-logging``.
        reuse_data: reuse instances and vocabulary between trials whose data configuration is
            identical (see :mod:`allennlp_optuna.trial.data_reuse`); results are the same either way.
        archive: every trial writes ``model.tar.gz`` as ``allennlp train`` does (``--archive all``);
            otherwise only the study's best trial is archived, when ``tune`` ends.
        check_metrics: stop after a trial's first epoch when a ``--metrics`` or ``--constraint``
            key is not among its metrics (see :mod:`allennlp_optuna.trial.callbacks.metric_check`).
    """

    config_file: str
    objectives: Objectives = field(default_factory=lambda: Objectives.parse(DEFAULT_METRICS))
    constraints: Constraints = Constraints()
    repeats: RepeatPlan = RepeatPlan()
    overrides: Union[str, Dict[str, Any]] = ""
    include_package: Tuple[str, ...] = ()
    file_friendly_logging: bool = False
    reuse_data: bool = True
    archive: bool = False
    check_metrics: bool = True


@dataclass(frozen=True)
class TuneSettings:
    """Everything one ``allennlp tune`` run is told; build it with :meth:`parse` or :meth:`from_args`.

    Args:
        training: what every trial trains with (:class:`TrainingSettings`).
        search_space_file: the search-space file (see :mod:`allennlp_optuna.study.search_space`).
        serialization_dir: parent directory of the trials' serialization directories.
        study_name: the study's name (``parse`` defaults it to the config file's stem).
        storage: an Optuna storage URL; defaults to ``sqlite:///allennlp_optuna.db``.
        n_trials: how many trials this call runs, over all its workers (``None``: until
            ``max_trials``, ``timeout`` or interrupted).
        timeout: stop starting trials after this many seconds.
        optuna_param_path: JSON file naming the sampler and pruner.
        skip_if_exists: join an existing study of the same name instead of refusing.
        skip_exception: record a failing trial as FAIL and go on with the study.
        verbose: stream AllenNLP's training log to the console too, not only to each trial's
            ``out.log`` (see :mod:`allennlp_optuna.output.console`).
        enqueue_trial: JSON files of hyperparameter values (e.g. a hand-tuned baseline) that run
            first, in order (see :mod:`allennlp_optuna.study.enqueue`).
        n_workers: worker processes sharing this call's trials (see :mod:`allennlp_optuna.parallel`).
        devices: GPU ids split between the workers, ``devices_per_trial`` each.
        devices_per_trial: GPUs each trial trains on.
        max_trials: study-wide budget: stop when the study, over all workers and machines,
            has this many COMPLETE and PRUNED trials (see :mod:`allennlp_optuna.parallel.budget`).
        heartbeat_interval: seconds between a running trial's heartbeats; a trial silent for
            twice as long is failed and retried with the same parameters.
        archive: ``"best"``: when the trials are done, the study's best trial gets its
            ``model.tar.gz``; ``"all"``: every trial writes it.
        max_worker_restarts: how many killed worker processes (SIGKILL, out of memory) this run
            replaces, over all workers, waiting longer before each; one more kill stops the run.
        keep_checkpoints: keep each finished trial's epoch checkpoints (``model_state_e*``,
            ``training_state_e*``); by default they are removed (see :mod:`allennlp_optuna.faults.cleanup`).
        trials_per_device: workers sharing each GPU (each group of ``devices_per_trial`` GPUs).
        launcher: ``"local"``: the workers are processes of this machine; ``"slurm"``: ``n_workers``
            tasks of one SLURM job array (see :mod:`allennlp_optuna.cluster`).
        sbatch: with ``launcher="slurm"``, ``sbatch`` options, passed verbatim (``"--partition=gpu --gres=gpu:1"``).
        detach: with ``launcher="slurm"``, return once the job is submitted instead of following the study.
    """

    training: TrainingSettings
    search_space_file: str
    serialization_dir: str
    study_name: str
    storage: str = DEFAULT_STORAGE
    n_trials: Optional[int] = None
    timeout: Optional[float] = None
    optuna_param_path: Optional[str] = None
    skip_if_exists: bool = False
    skip_exception: bool = False
    verbose: bool = False
    enqueue_trial: Tuple[str, ...] = ()
    n_workers: Optional[int] = None
    devices: Optional[Tuple[int, ...]] = None
    devices_per_trial: int = 1
    max_trials: Optional[int] = None
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL
    archive: str = ARCHIVE_BEST
    max_worker_restarts: int = 3
    keep_checkpoints: bool = False
    trials_per_device: int = 1
    launcher: str = LAUNCH_LOCAL
    sbatch: str = ""
    detach: bool = False

    @classmethod
    def parse(cls, config_file: str, search_space_file: str, serialization_dir: str, **options: Any) -> "TuneSettings":
        """The settings of ``allennlp tune``'s options, by their flags' names; the first bad value is one
        ``ConfigurationError`` line.

        Args:
            config_file: Jsonnet config reading hyperparameters with ``std.extVar``.
            search_space_file: the search-space file.
            serialization_dir: parent directory of the trials' serialization directories.
            options: any option of ``allennlp tune`` by its flag's name (:func:`option_names`):
                ``metrics`` and ``direction`` (several keys separated by commas), ``constraints``
                (``"KEY<=NUMBER"`` strings), ``seeds`` and ``repeat`` (``"NAME=V1,V2"``), and the
                other fields of :class:`TrainingSettings` and of this class.

        Example::

            settings = TuneSettings.parse("config.jsonnet", "hparams.json", "result",
                                          metrics="best_validation_accuracy", n_trials=20)
        """
        unknown = sorted(set(options) - set(option_names()))
        if unknown:
            hint = did_you_mean(unknown, option_names())
            raise TypeError(f"unknown option(s) of tune: {', '.join(unknown)}{'; ' + hint if hint else ''}")
        options = {name: tuple(value) if name in _SEQUENCES and value is not None else value
                   for name, value in options.items()}
        _check_counts(options)
        try:
            objectives = parse_objectives(options.get("metrics"), options.get("direction"))
            constraints = Constraints.parse(options.get("constraints"))
        except (ObjectiveError, ConstraintError) as error:
            raise ConfigurationError(str(error))
        training = TrainingSettings(
            config_file,
            objectives=objectives,
            constraints=constraints,
            repeats=RepeatPlan.parse(options.get("seeds"), options.get("repeat")),
            archive=options.get("archive") == ARCHIVE_ALL,
            **{name: options[name] for name in _TRAINING_OPTIONS if name in options},
        )
        _check_workers(options)
        _check_archive(options.get("archive", ARCHIVE_BEST))
        _check_launcher(options)
        own = {name: options[name] for name in _OWN_OPTIONS if name in options}
        own["study_name"] = own.get("study_name") or default_study_name(config_file)
        return cls(training, search_space_file, serialization_dir, **own)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TuneSettings":
        """The settings ``allennlp tune``'s command line gives; each flag's ``dest`` is an option's name."""
        options = {name: getattr(args, name) for name in option_names() if hasattr(args, name)}
        return cls.parse(args.param_path, args.hparam_path, args.serialization_dir, **options)

    def options(self) -> Dict[str, Any]:
        """The options :meth:`parse` makes these settings from, as JSON values (what a SLURM job's
        workers are given): ``TuneSettings.parse(config_file, search_space_file, serialization_dir,
        **settings.options())`` equals ``settings``."""
        training = self.training
        texts = {"metrics": training.objectives.metrics, "direction": training.objectives.direction,
                 "constraints": training.constraints.texts, "seeds": training.repeats.seeds,
                 "repeat": training.repeats.repeat}
        typed = [(name, getattr(self, name)) for name in _OWN_OPTIONS]
        typed += [(name, getattr(training, name)) for name in _TRAINING_OPTIONS]
        return {**texts, **{name: list(value) if isinstance(value, tuple) else value for name, value in typed}}

    @property
    def catch(self) -> Tuple[Type[Exception], ...]:
        """The exceptions a trial may raise and be recorded as FAIL without stopping the study."""
        return (Exception,) if self.skip_exception else ()


_PARSED_OPTIONS = ("metrics", "direction", "constraints", "seeds", "repeat")
"""Options given as text that :meth:`TuneSettings.parse` turns into typed fields."""
_DERIVED = ("config_file", "objectives", "constraints", "repeats", "archive", "check_metrics")
"""Fields of :class:`TrainingSettings` that are no option of their own (made from other options, or fixed)."""
_TRAINING_OPTIONS = tuple(f.name for f in fields(TrainingSettings) if f.name not in _DERIVED)
_OWN_OPTIONS = tuple(f.name for f in fields(TuneSettings) if f.name not in ("training", "search_space_file", "serialization_dir"))
_SEQUENCES = ("include_package", "enqueue_trial", "devices")


def option_names() -> Tuple[str, ...]:
    """Every keyword :meth:`TuneSettings.parse` takes besides its three positional arguments."""
    return (*_PARSED_OPTIONS, *_OWN_OPTIONS, *_TRAINING_OPTIONS)


def parse_objectives(metrics: Optional[str], direction: Optional[str]) -> Objectives:
    """``--metrics`` (default ``best_validation_loss``) and ``--direction``; a direction left out is inferred, and logged."""
    objectives = Objectives.parse(metrics or DEFAULT_METRICS, direction)
    if direction is None:
        logger.info("Direction inferred from %r: %s (set --direction to change it).", objectives.metrics,
                    objectives.direction)
    for contradiction in contradicted_directions(objectives):
        logger.warning("%s.", contradiction)
    return objectives


def _check_counts(options: Mapping[str, Any]) -> None:
    n_trials, timeout = options.get("n_trials"), options.get("timeout")
    if n_trials is not None and n_trials < 1:
        raise ConfigurationError(f"--n-trials must be at least 1, got {n_trials}")
    if timeout is not None and timeout <= 0:
        raise ConfigurationError(f"--timeout must be a positive number of seconds, got {timeout}")


_COUNTS = ("max_trials", "n_workers", "devices_per_trial", "trials_per_device")
"""Options that, when given, must be at least 1."""


def _check_workers(options: Mapping[str, Any]) -> None:
    heartbeat_interval = options.get("heartbeat_interval", DEFAULT_HEARTBEAT_INTERVAL)
    max_worker_restarts = options.get("max_worker_restarts", 0)
    for name in _COUNTS:
        value = options.get(name)
        if value is not None and value < 1:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if heartbeat_interval < 1:
        raise ConfigurationError(f"--heartbeat-interval must be at least 1 second, got {heartbeat_interval}")
    if max_worker_restarts < 0:
        raise ConfigurationError(f"--max-worker-restarts must be 0 or more, got {max_worker_restarts}")


def _check_launcher(options: Mapping[str, Any]) -> None:
    launcher = options.get("launcher", LAUNCH_LOCAL)
    if launcher not in LAUNCHERS:
        raise ConfigurationError(f"--launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    if launcher == LAUNCH_SLURM:
        _check_slurm_options(options)
        return
    for flag, name in (("--sbatch", "sbatch"), ("--detach", "detach")):
        if options.get(name):
            raise ConfigurationError(f"{flag} is an option of --launcher slurm")


def _check_slurm_options(options: Mapping[str, Any]) -> None:
    storage = options.get("storage") or DEFAULT_STORAGE
    if is_sqlite(storage):
        raise ConfigurationError(
            f"--launcher slurm cannot share the SQLite storage {storage} between its workers (SQLite on a shared "
            "filesystem such as NFS corrupts, and other nodes cannot reach this one's files): use a journal file on "
            "the shared filesystem (--storage /shared/study.log) or PostgreSQL (--storage postgresql://USER@HOST/DB)"
        )
    if options.get("devices"):
        raise ConfigurationError(
            "--launcher slurm trains on the GPUs SLURM gives each task: ask for them with --sbatch "
            "\"--gres=gpu:N\" instead of --devices"
        )


def _check_archive(archive: str) -> None:
    if archive not in ARCHIVE_CHOICES:
        raise ConfigurationError(f"--archive must be one of {', '.join(ARCHIVE_CHOICES)}, got {archive!r}")
