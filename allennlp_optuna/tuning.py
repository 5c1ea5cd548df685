"""The study loop: check every input, open the study, run its trials, finish.

:func:`tune_study` reads as its steps: :meth:`TuneSettings.check` → :func:`plan_study` →
:func:`open_study` → :func:`run_study`. A trial's value comes from one path: :func:`tune_study`
→ :func:`~allennlp_optuna.workers.optimize_in_process` (or worker processes) →
:class:`TrialObjective` →
:class:`~allennlp_optuna.executor.AllenNLPExecutor` → ``Params.from_file`` → AllenNLP
``train_model`` → ``SERIALIZATION_DIR/trial_N/metrics.json``.
"""
import logging
import os
import re
import traceback
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Union

import optuna
from allennlp.common.checks import ConfigurationError
from optuna.trial import FrozenTrial

from allennlp_optuna.best import archive_best_trial
from allennlp_optuna.cleanup import CheckpointCleanup
from allennlp_optuna.compat import no_trial_traceback_for, sampler_constraint_arguments, sampler_uses_constraints
from allennlp_optuna.config import check_config, check_overrides, load_params
from allennlp_optuna.constraints import Constraints, ConstraintViolations
from allennlp_optuna.errors import StudyError
from allennlp_optuna.enqueue import EnqueuedValues, enqueue_trials, read_enqueued_values
from allennlp_optuna.executor import AllenNLPExecutor
from allennlp_optuna.memory import TrialMemory, frozen_between_trials
from allennlp_optuna.console import StudyDescription, class_name, study_console
from allennlp_optuna.preflight import check_devices, check_serialization_dir, import_packages
from allennlp_optuna.pruning import monitored_metric, plan_pruning
from allennlp_optuna.report import REPORT_FILE, ReportWriter
from allennlp_optuna.objectives import split_keys
from allennlp_optuna.repeats import RepeatPlan
from allennlp_optuna.resume import resumable_directory
from allennlp_optuna.search_space import SearchSpace
from allennlp_optuna.settings import (  # noqa: F401 (ARCHIVE_* and check_archive re-exported)
    ARCHIVE_ALL,
    ARCHIVE_BEST,
    ARCHIVE_CHOICES,
    TuneSettings,
    check_archive,
)
from allennlp_optuna.study import OptunaSettings, create_or_join_study
from allennlp_optuna.trial_attrs import (
    CONFIG_ATTR,
    CONSTRAINTS_ATTR,
    FAIL_REASON_ATTR,
    METRIC_ATTR,
    REPEATS_ATTR,
    SERIALIZATION_DIR_ATTR,
    STUDY_ERROR_ATTR,
)
from allennlp_optuna.workers import (
    WorkerPlan,
    optimize_in_process,
    plan_workers,
    run_workers,
    runs_in_this_process,
    with_overrides,
)

logger = logging.getLogger(__name__)
_TRIAL_DIR = re.compile(r"^trial_(\d+)$")
no_trial_traceback_for(ConfigurationError)  # its one line is printed by the command; fail_reason keeps the rest

StudyCallback = Callable[[optuna.Study, FrozenTrial], None]


def trial_directory(serialization_dir: str, trial_number: int) -> str:
    """``SERIALIZATION_DIR/trial_N``: where trial N trains."""
    return os.path.join(serialization_dir, f"trial_{trial_number}")


@dataclass(frozen=True)
class TrialObjective:
    """The objective ``study.optimize`` calls: sample, train in ``trial_N``, return the metric.

    A failing trial keeps its traceback in the ``fail_reason`` user attribute. With
    ``archive="best"`` no trial writes ``model.tar.gz`` (``tune`` archives the best one when it
    ends); every trial keeps ``config.json``, ``best.th`` and ``vocabulary/``, which
    ``allennlp evaluate`` and ``allennlp predict`` also accept (pass the directory). The
    executors leave a trial's memory to :meth:`study_callbacks`, which ``study.optimize`` must
    be given too.

    Args:
        settings: the run's settings.
        search_space: the hyperparameters each trial samples.
        add_pruning_callback: add ``{type: 'optuna_pruner'}`` to configs that list none.
        worker_overrides: config overrides of the worker that runs the trials (its devices).
    """

    settings: TuneSettings
    search_space: SearchSpace
    add_pruning_callback: bool = False
    worker_overrides: Dict[str, Any] = field(default_factory=dict)

    def __call__(self, trial: optuna.Trial) -> Union[float, List[float]]:
        try:
            self.search_space.suggest(trial)
            return self.executor(trial, resumable_directory(trial)).run()
        except optuna.TrialPruned:
            raise
        except StudyError as error:
            trial.set_user_attr(FAIL_REASON_ATTR, traceback.format_exc())
            trial.set_user_attr(STUDY_ERROR_ATTR, error.message)
            raise
        except BaseException:
            trial.set_user_attr(FAIL_REASON_ATTR, traceback.format_exc())
            raise

    def executor(self, trial: optuna.Trial, resume_from: Optional[str] = None) -> AllenNLPExecutor:
        """The executor that trains ``trial`` in ``trial_N``, continuing ``resume_from`` (a killed
        trial's directory, see :mod:`allennlp_optuna.resume`) when it can."""
        settings = self.settings
        return AllenNLPExecutor(
            trial,
            settings.config_file,
            trial_directory(settings.serialization_dir, trial.number),
            settings.metrics,
            seeds=settings.seeds,
            repeat=settings.repeat,
            constraints=settings.constraints,
            include_package=list(settings.include_package),
            file_friendly_logging=settings.file_friendly_logging,
            overrides=with_overrides(settings.overrides, self.worker_overrides),
            reuse_data=settings.reuse_data,
            add_pruning_callback=self.add_pruning_callback,
            archive=settings.archive == ARCHIVE_ALL,
            release_memory=False,  # the TrialMemory of study_callbacks() does it, after Optuna records the trial
            check_metric=True,
            resume_from=resume_from,
        )

    def for_worker(self, plan: WorkerPlan) -> "TrialObjective":
        """This objective as the worker of ``plan`` runs it: its trainer on the worker's devices."""
        return replace(self, worker_overrides={**self.worker_overrides, **plan.config_overrides()})

    def study_callbacks(self) -> List[StudyCallback]:
        """The study callbacks this objective needs: :class:`TrialMemory` frees what each trial held,
        :class:`~allennlp_optuna.cleanup.CheckpointCleanup` removes its epoch checkpoints (unless
        ``keep_checkpoints``), :func:`stop_on_study_error` ends the study on an error every trial would hit.

        Freeing memory after Optuna has recorded the trial, rather than in the executor, lets a
        pruned or failed trial's traceback (which holds the model) go first.
        """
        cleanup = [] if self.settings.keep_checkpoints else [CheckpointCleanup()]
        return [TrialMemory(), *cleanup, stop_on_study_error]


def stop_on_study_error(study: optuna.Study, trial: FrozenTrial) -> None:
    """Study callback: raise the :class:`~allennlp_optuna.errors.StudyError` that failed ``trial``.

    ``--skip-exception`` lets Optuna record a failing trial and go on; an error that every
    trial would hit (a ``--metrics`` key that training never reports) stops the study anyway.
    """
    message = trial.user_attrs.get(STUDY_ERROR_ATTR)
    if message is not None:
        raise StudyError(message)


@dataclass
class StudyPlan:
    """What checking a run's inputs found: everything its study needs before the first trial.

    Args:
        workers: one plan per worker process (its GPUs or CPU threads).
        search_space: the validated search space.
        optuna_settings: the sampler and pruner.
        enqueued: the ``--enqueue-trial`` values, checked against the search space.
        add_pruning_callback: whether every trial's config gets the ``optuna_pruner`` callback.
    """

    workers: List[WorkerPlan]
    search_space: SearchSpace
    optuna_settings: OptunaSettings
    enqueued: List[EnqueuedValues]
    add_pruning_callback: bool


def plan_study(settings: TuneSettings) -> StudyPlan:
    """Read and check every input file, before any study is opened and any trial trains."""
    workers = plan_workers(settings.n_workers, settings.devices, settings.devices_per_trial)
    check_devices(settings.devices)
    search_space = SearchSpace.from_file(settings.search_space_file)
    optuna_settings = plan_sampler(settings)
    multi_objective = settings.objectives.is_multi
    import_packages(settings.include_package)
    repeat_vars = check_repeat_variable(settings.repeats, search_space)
    check_config(settings.config_file, search_space, repeat_vars)
    check_overrides(settings.overrides)
    enqueued = [read_enqueued_values(path, search_space) for path in settings.enqueue_trial]
    example_values = {**search_space.example_values(), **repeat_vars}
    example_params = load_params(settings.config_file, example_values, settings.overrides)
    add_pruning_callback = plan_pruning(example_params, optuna_settings.pruner, settings.config_file, multi_objective)
    check_serialization_dir(settings.serialization_dir)
    return StudyPlan(workers, search_space, optuna_settings, enqueued, add_pruning_callback)


def plan_sampler(settings: TuneSettings) -> OptunaSettings:
    """The sampler and pruner of the ``--optuna-param-path`` file, made to use the ``--constraint`` bounds.

    A sampler that models constraints is given them (Optuna 3 and 4 need a ``constraints_func``,
    see :func:`~allennlp_optuna.compat.sampler_constraint_arguments`); one that does not is warned
    about: infeasible trials are still recorded and never chosen as the best.
    """
    constraints = settings.parsed_constraints
    arguments = sampler_constraint_arguments(ConstraintViolations(tuple(constraints.texts))) if constraints else {}
    with warnings.catch_warnings():  # Optuna 3 and 4 call constraints_func experimental on every sampler made
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna_settings = OptunaSettings.from_file(settings.optuna_param_path, arguments)
        optuna_settings = with_default_sampler(optuna_settings, settings.objectives.is_multi, arguments)
    if constraints and not sampler_uses_constraints(optuna_settings.sampler):
        logger.warning(
            "%s does not take constraints into account when it samples; trials that violate %s are still "
            "recorded as infeasible and never chosen as the best.",
            type(optuna_settings.sampler).__name__, ", ".join(constraints.texts),
        )
    return optuna_settings


def with_default_sampler(
    optuna_settings: OptunaSettings, multi_objective: bool, sampler_arguments: Optional[Dict[str, Any]] = None
) -> OptunaSettings:
    """A study without a named sampler gets ``TPESampler`` when it has several objectives or constraints.

    Optuna 3 and 4 default to ``NSGAIISampler`` for several objectives, whose first generation
    (50 trials) is random sampling: most AllenNLP studies end before it. TPE handles several
    objectives (Optuna's multi-objective TPE) and models from its 10th trial on; Optuna 5 made it
    the default, and this gives every supported Optuna the same. ``sampler_arguments`` (Optuna 3
    and 4's ``constraints_func``) make Optuna's default TPE use the study's constraints.
    """
    if optuna_settings.sampler is None and (multi_objective or sampler_arguments):
        return replace(optuna_settings, sampler=optuna.samplers.TPESampler(**(sampler_arguments or {})))
    return optuna_settings


def check_repeat_variable(repeats: RepeatPlan, search_space: SearchSpace) -> Dict[str, str]:
    """The ``--repeat`` variable's first value as an ext var; refuse one the search space also samples."""
    extra = repeats.extra_ext_vars
    clash = sorted(set(extra) & set(search_space.names))
    if clash:
        raise ConfigurationError(
            f"--repeat varies {clash[0]!r}, which the search space also samples; repeat another std.extVar"
        )
    return extra


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


def check_study_metric(study: optuna.Study, metrics: str) -> None:
    """Refuse to join a study that optimizes another metric."""
    earlier_metric = study.user_attrs.get(METRIC_ATTR, metrics)
    if earlier_metric != metrics:
        raise ConfigurationError(
            f"study {study.study_name!r} optimizes {earlier_metric}, not {metrics}; pass --metrics {earlier_metric} "
            "or choose another --study-name"
        )


def check_study_repeats(study: optuna.Study, repeats: RepeatPlan) -> None:
    """Refuse to join a study whose trials were repeated otherwise (their values would not compare)."""
    earlier = study.user_attrs.get(REPEATS_ATTR)
    if earlier is None and not study.get_trials(deepcopy=False):
        return
    earlier_plan = RepeatPlan.from_attr(earlier)
    if earlier_plan != repeats:
        def flags(plan: RepeatPlan) -> str:
            parts = ([f"--seeds {plan.seeds}"] if plan.seeds else []) + ([f"--repeat {plan.repeat}"] if plan.repeat else [])
            return " ".join(parts) or "no --seeds or --repeat"

        raise ConfigurationError(
            f"study {study.study_name!r} repeats each trial with {flags(earlier_plan)}, not {flags(repeats)}; "
            "pass the same flags or choose another --study-name"
        )


def check_study_constraints(study: optuna.Study, constraints: Constraints) -> None:
    """Refuse to join a study whose trials were held to other constraints (their feasibility would not compare)."""
    earlier = study.user_attrs.get(CONSTRAINTS_ATTR)
    if earlier is None and not study.get_trials(deepcopy=False):
        return
    earlier_constraints = Constraints.parse(earlier or ())
    if earlier_constraints.texts != constraints.texts:
        raise ConfigurationError(
            f"study {study.study_name!r} holds its trials to {earlier_constraints.flags()}, not {constraints.flags()}; "
            "pass the same --constraint flags or choose another --study-name"
        )


def open_study(settings: TuneSettings, plan: StudyPlan) -> optuna.Study:
    """Create or join the study of resolved ``settings``, check it fits, record the run, queue trials."""
    assert settings.study_name is not None and settings.direction is not None  # settings.resolved()
    study = create_or_join_study(
        settings.study_name,
        settings.storage,
        settings.objectives.directions,
        plan.optuna_settings,
        join_existing=settings.skip_if_exists,
    )
    check_trial_directories(study, settings.serialization_dir)
    check_study_metric(study, settings.objectives.metrics)
    check_study_repeats(study, settings.repeats)
    check_study_constraints(study, settings.parsed_constraints)
    study.set_user_attr(METRIC_ATTR, settings.objectives.metrics)
    if settings.repeats.active:
        study.set_user_attr(REPEATS_ATTR, settings.repeats.as_attr())
    if settings.parsed_constraints:
        study.set_user_attr(CONSTRAINTS_ATTR, settings.parsed_constraints.texts)
    study.set_user_attr(CONFIG_ATTR, os.path.abspath(settings.config_file))
    os.makedirs(settings.serialization_dir, exist_ok=True)
    enqueue_trials(study, plan.enqueued)
    return study


def study_callbacks(settings: TuneSettings, objective: TrialObjective, report: ReportWriter) -> List[StudyCallback]:
    """What runs after each trial: the objective's memory release, the report."""
    return [*objective.study_callbacks(), report]


def describe_run(settings: TuneSettings, plan: StudyPlan) -> StudyDescription:
    """What the console's header says about this run of resolved ``settings``."""
    assert settings.study_name is not None and settings.direction is not None  # settings.resolved()
    return StudyDescription(
        settings.study_name, settings.storage, settings.direction, settings.metrics,
        sampler=class_name(plan.optuna_settings.sampler, "TPESampler"),
        pruner=class_name(plan.optuna_settings.pruner, "none"),
        serialization_dir=settings.serialization_dir,
        report=os.path.join(settings.serialization_dir, REPORT_FILE),
        n_trials=settings.n_trials, timeout=settings.timeout, n_workers=len(plan.workers),
        constraints=tuple(settings.parsed_constraints.texts),
    )


def run_study(study: optuna.Study, settings: TuneSettings, plan: StudyPlan) -> None:
    """Run the trials, archive the best one, and leave the report current whatever happens."""
    objective = TrialObjective(settings, plan.search_space, plan.add_pruning_callback)
    report = ReportWriter(settings.serialization_dir)
    callbacks = study_callbacks(settings, objective, report)
    try:
        console = study_console(describe_run(settings, plan), monitored_metric(split_keys(settings.metrics)[0]), settings.verbose)
        with frozen_between_trials(), console:
            if runs_in_this_process(plan.workers):  # Optuna's own loop; no processes, tickets or locks
                optimize_in_process(settings, objective.for_worker(plan.workers[0]), plan.optuna_settings, callbacks)
            else:
                run_workers(
                    study, settings, objective, optuna_settings=plan.optuna_settings, plans=plan.workers,
                    callbacks=callbacks,
                )
            if settings.archive == ARCHIVE_BEST:
                archive_best_trial(study)
    finally:
        report.write(study)  # also after a trial failed without --skip-exception, or Ctrl-C


def tune_study(settings: TuneSettings) -> optuna.Study:
    """Tune with ``settings``: check every input, open (or join) the study, run its trials.

    Returns:
        The study, with this run's trials added.
    """
    settings.check()
    plan = plan_study(settings)
    settings = settings.resolved()
    study = open_study(settings, plan)
    run_study(study, settings, plan)
    return study


def tune(config_file: str, search_space_file: str, serialization_dir: str, **options: Any) -> optuna.Study:
    """Tune the hyperparameters of an AllenNLP config; the function behind ``allennlp tune``.

    Every input is validated before the first trial trains. Each trial trains in
    ``serialization_dir/trial_N`` and its value is ``metrics`` from that directory's
    ``metrics.json``.

    Args:
        config_file: Jsonnet config reading hyperparameters with ``std.extVar``.
        search_space_file: the search-space file (see :mod:`allennlp_optuna.search_space`).
        serialization_dir: parent directory of the trials' serialization directories.
        options: any other field of :class:`~allennlp_optuna.settings.TuneSettings`, by keyword
            (``storage``, ``metrics``, ``n_trials``, ``optuna_param_path``, ...).

    Returns:
        The study, with this call's trials added.

    Example::

        study = tune("config.jsonnet", "hparams.json", "result", storage="sqlite:///study.db",
                     metrics="best_validation_accuracy", n_trials=20)
    """
    return tune_study(TuneSettings(config_file, search_space_file, serialization_dir, **options))
