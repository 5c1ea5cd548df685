"""The options of one study run, as one typed object: built once, validated once, passed whole.

``allennlp tune`` builds :class:`TuneSettings` from its command line
(:meth:`TuneSettings.from_args`), a script builds it directly or through
:func:`~allennlp_optuna.tuning.tune`'s keyword arguments; every layer after that (the study
loop, the objective, the worker processes) reads the options from it. A new option is one
field here, its flag in :mod:`allennlp_optuna.commands.tune` and its use.
"""
import argparse
import logging
from dataclasses import dataclass, fields, replace
from typing import Any, Dict, Optional, Sequence, Tuple, Type, Union

from allennlp.common.checks import ConfigurationError

from allennlp_optuna.constraints import ConstraintError, Constraints
from allennlp_optuna.recovery import DEFAULT_HEARTBEAT_INTERVAL
from allennlp_optuna.objectives import ObjectiveError, Objectives
from allennlp_optuna.repeats import RepeatPlan
from allennlp_optuna.study import DEFAULT_STORAGE, default_study_name

logger = logging.getLogger(__name__)

ARCHIVE_BEST = "best"
ARCHIVE_ALL = "all"
ARCHIVE_CHOICES = (ARCHIVE_BEST, ARCHIVE_ALL)
"""Which trials get a ``model.tar.gz``: the study's best, when ``tune`` ends, or every completed
trial as ``allennlp train`` would."""

DIRECTIONS = ("minimize", "maximize")


def check_archive(archive: str) -> None:
    """Refuse an ``archive`` policy other than :data:`ARCHIVE_CHOICES`."""
    if archive not in ARCHIVE_CHOICES:
        raise ConfigurationError(f"--archive must be one of {', '.join(ARCHIVE_CHOICES)}, got {archive!r}")


def check_objectives(metrics: str, direction: Optional[str]) -> Objectives:
    """``--metrics`` and ``--direction`` parsed; one ``ConfigurationError`` line when they do not fit together."""
    try:
        return Objectives.parse(metrics, direction)
    except ObjectiveError as error:
        raise ConfigurationError(str(error))


def check_constraints(constraints: Union[None, str, Sequence[str]]) -> Constraints:
    """``--constraint`` values parsed; one ``ConfigurationError`` line for the first malformed one."""
    try:
        return Constraints.parse(constraints)
    except ConstraintError as error:
        raise ConfigurationError(str(error))


@dataclass(frozen=True)
class TuneSettings:
    """Everything one ``allennlp tune`` run is told.

    Args:
        config_file: Jsonnet config reading hyperparameters with ``std.extVar``.
        search_space_file: the search-space file (see :mod:`allennlp_optuna.search_space`).
        serialization_dir: parent directory of the trials' serialization directories.
        study_name: defaults to the config file's stem.
        storage: an Optuna storage URL; defaults to ``sqlite:///allennlp_optuna.db``.
        metrics: the ``metrics.json`` key to optimise, or several separated by commas (a
            multi-objective study, see :mod:`allennlp_optuna.objectives`).
        direction: ``"minimize"`` or ``"maximize"``, one per key separated by commas; inferred
            from the keys when ``None``.
        n_trials: how many trials this call runs, over all its workers (``None``: until
            ``max_trials``, ``timeout`` or interrupted).
        timeout: stop starting trials after this many seconds.
        optuna_param_path: JSON file naming the sampler and pruner.
        skip_if_exists: join an existing study of the same name instead of refusing.
        skip_exception: record a failing trial as FAIL and go on with the study.
        include_package: packages to import (registrations used by the config).
        overrides: JSON overrides applied to every trial's config, as ``allennlp train -o``.
        file_friendly_logging: as ``allennlp train --file-friendly-logging``.
        verbose: stream AllenNLP's training log to the console too, not only to each trial's
            ``out.log`` (see :mod:`allennlp_optuna.console`).
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
        max_worker_restarts: how many killed worker processes (SIGKILL, out of memory) this run
            replaces, over all workers, waiting longer before each; one more kill stops the run.
        keep_checkpoints: keep each finished trial's epoch checkpoints (``model_state_e*``,
            ``training_state_e*``); by default they are removed (see :mod:`allennlp_optuna.cleanup`).
        seeds: train each trial this many times with derived seeds; its value is the mean
            (see :mod:`allennlp_optuna.repeats`).
        repeat: ``"NAME=V1,V2,..."``: train each trial once per value of ``std.extVar(NAME)``
            (folds, say); its value is the mean.
        constraints: bounds on other ``metrics.json`` keys, each ``"KEY<=NUMBER"`` or
            ``"KEY>=NUMBER"`` (e.g. ``"peak_worker_0_memory_MB<=2000"``); trials that violate one
            are infeasible and never the best (see :mod:`allennlp_optuna.constraints`).
    """

    config_file: str
    search_space_file: str
    serialization_dir: str
    study_name: Optional[str] = None
    storage: str = DEFAULT_STORAGE
    metrics: str = "best_validation_loss"
    direction: Optional[str] = None
    n_trials: Optional[int] = None
    timeout: Optional[float] = None
    optuna_param_path: Optional[str] = None
    skip_if_exists: bool = False
    skip_exception: bool = False
    include_package: Sequence[str] = ()
    overrides: Union[str, Dict[str, Any]] = ""
    file_friendly_logging: bool = False
    verbose: bool = False
    reuse_data: bool = True
    enqueue_trial: Sequence[str] = ()
    n_workers: Optional[int] = None
    devices: Optional[Sequence[int]] = None
    devices_per_trial: int = 1
    max_trials: Optional[int] = None
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL
    archive: str = ARCHIVE_BEST
    max_worker_restarts: int = 3
    keep_checkpoints: bool = False
    seeds: Optional[int] = None
    repeat: Optional[str] = None
    constraints: Sequence[str] = ()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TuneSettings":
        """The settings ``allennlp tune``'s command line gives; each flag's ``dest`` is a field's name."""
        options = {f.name: getattr(args, f.name) for f in fields(cls)[3:] if hasattr(args, f.name)}
        return cls(args.param_path, args.hparam_path, args.serialization_dir, **options)

    def check(self) -> None:
        """Refuse values no study can run with; the first problem is one ``ConfigurationError`` line.

        Options that need files or the machine (devices, the search space, the config) are
        checked where they are read, in the order ``tune`` reads them.
        """
        if self.n_trials is not None and self.n_trials < 1:
            raise ConfigurationError(f"--n-trials must be at least 1, got {self.n_trials}")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError(f"--timeout must be a positive number of seconds, got {self.timeout}")
        check_objectives(self.metrics, self.direction)
        check_constraints(self.constraints)
        self.repeats.check()
        if self.max_trials is not None and self.max_trials < 1:
            raise ConfigurationError(f"--max-trials must be at least 1, got {self.max_trials}")
        if self.heartbeat_interval < 1:
            raise ConfigurationError(
                f"--heartbeat-interval must be at least 1 second, got {self.heartbeat_interval}"
            )
        if self.max_worker_restarts < 0:
            raise ConfigurationError(f"--max-worker-restarts must be 0 or more, got {self.max_worker_restarts}")
        check_archive(self.archive)

    def resolved(self) -> "TuneSettings":
        """These settings with the defaults that depend on other options filled in.

        The study name defaults to the config file's stem, the direction to what the metric's
        name says (logged, since the user did not choose it).
        """
        direction = self.direction
        if direction is None:
            direction = self.objectives.direction
            logger.info("Direction inferred from %r: %s (set --direction to change it).", self.metrics, direction)
        return replace(self, direction=direction, study_name=self.study_name or default_study_name(self.config_file))

    @property
    def objectives(self) -> Objectives:
        """The keys and directions to optimize (see :func:`check_objectives`)."""
        return check_objectives(self.metrics, self.direction)

    @property
    def parsed_constraints(self) -> Constraints:
        """The ``--constraint`` bounds (see :func:`check_constraints`); none when not given."""
        return check_constraints(self.constraints)

    @property
    def repeats(self) -> RepeatPlan:
        """The runs each trial trains (``--seeds``, ``--repeat``); one plain run without them."""
        return RepeatPlan(self.seeds, self.repeat)

    @property
    def catch(self) -> Tuple[Type[Exception], ...]:
        """The exceptions a trial may raise and be recorded as FAIL without stopping the study."""
        return (Exception,) if self.skip_exception else ()
