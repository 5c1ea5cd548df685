"""The study loop: check every input, open the study, run its trials, finish.

:func:`tune_study` reads as its steps: :func:`plan_study` → :func:`~allennlp_optuna.study.setup.open_study`
→ :func:`run_study`. A trial's value comes from one path: :func:`tune_study` →
:func:`~allennlp_optuna.parallel.loop.optimize_in_process` (or worker processes) →
:class:`~allennlp_optuna.trial.objective.TrialObjective` →
:class:`~allennlp_optuna.trial.executor.TrialExecutor` → ``Params.from_file`` → AllenNLP
``train_model`` → ``SERIALIZATION_DIR/trial_N/metrics.json``.
"""
import os
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence

import optuna
from allennlp.common.checks import ConfigurationError
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.core.compat import no_trial_traceback_for
from allennlp_optuna.core.trial_attrs import OVER_BUDGET_ATTR
from allennlp_optuna.faults.preemption import Preempted
from allennlp_optuna.output.console import StudyDescription, StudyWatcher, study_console
from allennlp_optuna.core.trial_attrs import REPORT_FILE
from allennlp_optuna.output.report import ReportWriter
from allennlp_optuna.parallel.loop import optimize_in_process
from allennlp_optuna.parallel.plan import WorkerPlan, plan_workers
from allennlp_optuna.parallel.workers import run_workers, runs_in_this_process
from allennlp_optuna.study.settings import ARCHIVE_BEST, LAUNCH_LOCAL, TuneSettings
from allennlp_optuna.study.config import check_config, check_overrides, load_params
from allennlp_optuna.study.enqueue import EnqueuedValues, read_enqueued_values
from allennlp_optuna.study.data_paths import check_study_data
from allennlp_optuna.study.preflight import (
    check_devices,
    check_journal_directory,
    check_repeat_variable,
    check_serialization_dir,
    import_packages,
)
from allennlp_optuna.study.record import failure_line
from allennlp_optuna.study.samplers import OptunaSettings, check_sampler_fits, plan_sampler
from allennlp_optuna.study.search_space import SearchSpace
from allennlp_optuna.study.setup import open_study
from allennlp_optuna.study.storage import check_storage_url
from allennlp_optuna.trial.archive import archive_best_trial
from allennlp_optuna.study.objectives import monitored_metric
from allennlp_optuna.trial.callbacks.pruning import plan_pruning
from allennlp_optuna.trial.memory import frozen_between_trials
from allennlp_optuna.trial.objective import StudyCallback, TrialObjective

# A ConfigurationError's one line is printed by the command (fail_reason keeps the rest); a trial SLURM stopped is retried.
no_trial_traceback_for(ConfigurationError, Preempted)


@dataclass
class StudyPlan:
    """What checking a run's inputs found: everything its study needs before the first trial.

    Args:
        workers: one plan per worker process (its GPUs or CPU threads); with ``--launcher slurm``,
            one per task of the job array (each plans its own workers on the GPUs SLURM gives it).
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
    """Read and check every input (the storage, the files, every data path of every run), before any
    study is opened and any trial trains."""
    training = settings.training
    check_storage_url(settings.storage)
    workers = plan_worker_processes(settings)
    check_devices(settings.devices)
    check_journal_directory(settings.storage)
    search_space = SearchSpace.from_file(settings.search_space_file)
    optuna_settings = plan_sampler(settings.optuna_param_path, training.objectives.is_multi, training.constraints)
    check_sampler_fits(optuna_settings.sampler, search_space, str(settings.optuna_param_path))
    import_packages(training.include_package)
    repeat_vars = check_repeat_variable(training.repeats, search_space, training.config_file)
    check_config(training.config_file, search_space, repeat_vars)
    check_overrides(training.overrides)
    check_study_data(training.config_file, search_space, training.repeats, training.overrides)
    enqueued = [read_enqueued_values(path, search_space) for path in settings.enqueue_trial]
    example_params = load_params(training.config_file, {**search_space.example_values(), **repeat_vars}, training.overrides)
    add_pruning_callback = plan_pruning(
        example_params, optuna_settings.pruner, training.config_file, training.objectives.is_multi
    )
    check_serialization_dir(settings.serialization_dir)
    return StudyPlan(workers, search_space, optuna_settings, enqueued, add_pruning_callback)


def plan_worker_processes(settings: TuneSettings) -> List[WorkerPlan]:
    """One plan per worker process of this machine; with ``--launcher slurm``, one per task of the job array
    (each task plans its own workers on the GPUs SLURM gives it)."""
    if settings.launcher != LAUNCH_LOCAL:
        return [WorkerPlan(task) for task in range(settings.n_workers or 1)]
    return plan_workers(settings.n_workers, settings.devices, settings.devices_per_trial,
                        trials_per_device=settings.trials_per_device)


def describe_run(settings: TuneSettings, plan: StudyPlan) -> StudyDescription:
    """What the console's header says about this run."""
    sampling = plan.optuna_settings.describe()  # the names the study records, as the summary shows them
    return StudyDescription(
        settings.study_name, settings.storage, settings.training.objectives,
        sampler=sampling["sampler"],
        pruner=sampling["pruner"],
        serialization_dir=settings.serialization_dir,
        report=os.path.join(settings.serialization_dir, REPORT_FILE),
        n_trials=settings.n_trials, timeout=settings.timeout, n_workers=len(plan.workers),
        constraints=settings.training.constraints,
    )


def run_trials_here(
    study: optuna.Study, settings: TuneSettings, plan: StudyPlan, callbacks: Sequence[StudyCallback] = ()
) -> None:
    """Run the study's trials on this machine, calling ``callbacks`` after each: in this process
    (Optuna's own loop; no processes, tickets or locks) or in one worker process per plan."""
    objective = TrialObjective(settings, plan.search_space, plan.add_pruning_callback)
    callbacks = [*objective.study_callbacks(), *callbacks]
    if runs_in_this_process(plan.workers):
        optimize_in_process(settings, objective.for_worker(plan.workers[0]), plan.optuna_settings, callbacks)
    else:
        run_workers(study, settings, objective, optuna_settings=plan.optuna_settings, plans=plan.workers,
                    callbacks=callbacks)


TrialRunner = Callable[[StudyWatcher], None]
"""Runs (or waits for) a study's trials while the console shows them."""


def run_study(study: optuna.Study, settings: TuneSettings, plan: StudyPlan, run_trials: Optional[TrialRunner] = None
              ) -> None:
    """Run the trials in the console, archive the best one, and leave the report current whatever happens.

    Args:
        study: the study, created or joined.
        settings: the run's settings.
        plan: what checking the inputs found.
        run_trials: how the trials run while the console shows them (default: :func:`run_trials_here`;
            ``--launcher slurm`` follows its job array instead).
    """
    report = ReportWriter(settings.serialization_dir)
    run = run_trials or (lambda console: run_trials_here(study, settings, plan, [report]))
    try:
        monitor = monitored_metric(settings.training.objectives.keys[0])
        with frozen_between_trials(), study_console(describe_run(settings, plan), monitor, settings.verbose) as console:
            run(console)
            if settings.archive == ARCHIVE_BEST:
                archive_best_trial(study)
    finally:
        report.write(study)  # also after a trial failed without --skip-exception, or Ctrl-C


def tune_study(settings: TuneSettings) -> optuna.Study:
    """Tune with ``settings``: check every input, open (or join) the study, run its trials.

    Returns:
        The study, with this run's trials added.

    Raises:
        ConfigurationError: also when this run's trials all failed (``--skip-exception`` recorded
            them and went on) and none finished.
    """
    if settings.launcher != LAUNCH_LOCAL:
        raise ConfigurationError(
            f"--launcher {settings.launcher} submits a job array: run it with allennlp tune, or from Python with "
            "allennlp_optuna.cluster.launch_study(settings)"
        )
    plan = plan_study(settings)
    study = open_study(settings, plan.optuna_settings, plan.enqueued, plan.search_space)
    earlier = {t.number for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING}
    run_study(study, settings, plan)
    check_a_trial_finished([t for t in study.get_trials(deepcopy=False) if t.number not in earlier])
    return study


def check_a_trial_finished(trials: Sequence[FrozenTrial]) -> None:
    """Refuse a run whose trials all failed: nothing was learned, though ``--skip-exception`` went on.

    Trials that lost the race for ``--max-trials`` never ran and do not count. The study holds
    no result, so the same command continues it once the mistake is fixed
    (see :mod:`~allennlp_optuna.study.setup`).
    """
    ran = [t for t in trials if t.state.is_finished() and OVER_BUDGET_ATTR not in t.user_attrs]
    if ran and all(t.state == TrialState.FAIL for t in ran):
        raise ConfigurationError(
            f"no trial finished: all {len(ran)} trial(s) of this run failed (trial {ran[-1].number}: "
            f"{failure_line(ran[-1])}); fix that and run the same command again to continue the study"
        )


def tune(config_file: str, search_space_file: str, serialization_dir: str, **options: Any) -> optuna.Study:
    """Tune the hyperparameters of an AllenNLP config; the function behind ``allennlp tune``.

    Every input is validated before the first trial trains. Each trial trains in
    ``serialization_dir/trial_N`` and its value is ``metrics`` from that directory's
    ``metrics.json``.

    Args:
        config_file: Jsonnet config reading hyperparameters with ``std.extVar``.
        search_space_file: the search-space file (see :mod:`allennlp_optuna.study.search_space`).
        serialization_dir: parent directory of the trials' serialization directories.
        options: any option of ``allennlp tune`` by its flag's name (``storage``, ``metrics``,
            ``n_trials``, ``optuna_param_path``, ``seeds``, ...; see
            :meth:`~allennlp_optuna.study.settings.TuneSettings.parse`).

    Returns:
        The study, with this call's trials added.

    Example::

        study = tune("config.jsonnet", "hparams.json", "result", storage="sqlite:///study.db",
                     metrics="best_validation_accuracy", n_trials=20)
    """
    return tune_study(TuneSettings.parse(config_file, search_space_file, serialization_dir, **options))
