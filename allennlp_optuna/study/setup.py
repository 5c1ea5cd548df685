"""Creating or joining the study of an ``allennlp tune`` run, after checking that it fits the run.

A study is never changed by a run it does not fit: an existing study is joined only with
``--skip-if-exists``, the same direction(s), metrics, repeats and constraints, and a
serialization directory whose ``trial_N`` directories it wrote itself. Every check comes before
the study is created or changed, so a refused run leaves the storage as it was.

A study that holds no result (its trials FAIL, none finished or running: its first trials
stopped on a mistake, a wrong ``--metrics`` key, say) is continued by the next ``tune`` of that
name, the same command with the mistake fixed, without ``--skip-if-exists`` and whatever it
recorded before: its failed trials and their directories stay, and it records the new run's
metrics, repeats, constraints and config. When the fix changes what Optuna keeps for a study's
life (its direction(s), how a parameter is sampled: a categorical's choices, a log scale), the
study is made again under its name with its failed trials copied.
"""
import copy
import logging
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import optuna
from allennlp.common.checks import ConfigurationError
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.core.compat import study_storage
from allennlp_optuna.core.redaction import redact_url
from allennlp_optuna.core.trial_attrs import (
    CONFIG_ATTR,
    CONSTRAINTS_ATTR,
    METRIC_ATTR,
    REPEATS_ATTR,
    SAMPLING_ATTR,
    SERIALIZATION_DIR_ATTR,
)
from allennlp_optuna.study.settings import TrainingSettings, TuneSettings
from allennlp_optuna.study.enqueue import EnqueuedValues, enqueue_trials
from allennlp_optuna.study.record import StoredStudy
from allennlp_optuna.study.samplers import OptunaSettings
from allennlp_optuna.study.search_space import SearchSpace
from allennlp_optuna.study.storage import missing_storage_file, open_storage, study_names

logger = logging.getLogger(__name__)

_TRIAL_DIR = re.compile(r"^trial_(\d+)$")

NO_RESULT_STATES = (TrialState.FAIL, TrialState.WAITING)
"""The states of a study's trials when it holds no result: failed, or queued and never run."""


def open_study(
    settings: TuneSettings,
    optuna_settings: OptunaSettings,
    enqueued: Sequence[EnqueuedValues],
    search_space: SearchSpace,
) -> optuna.Study:
    """Create or join the study of ``settings`` once everything is checked, continue one that holds
    no result, record the run, queue the enqueued trials."""
    directions = settings.training.objectives.directions
    new_file = missing_storage_file(settings.storage) is not None  # made only once the run is accepted
    existing = None if new_file else existing_study(open_storage(settings.storage), settings.study_name,
                                                    optuna_settings)
    rerun = existing is not None and holds_no_result(existing)
    joined = existing if existing is not None and not rerun else None
    if joined is not None:
        check_existing(joined, settings.storage, directions, settings.skip_if_exists)
    check_trial_directories(existing, settings.serialization_dir, settings.study_name)
    if joined is not None:
        check_study_fits(joined, settings.training)
        check_search_space_fits(joined, search_space)
    if existing is None:
        study = create_or_join_study(settings.study_name, settings.storage, directions, optuna_settings,
                                     settings.skip_if_exists)
    else:
        study = continued_study(existing, settings, optuna_settings, search_space) if rerun else existing
    record_run(study, settings.training, optuna_settings)
    os.makedirs(settings.serialization_dir, exist_ok=True)
    enqueue_trials(study, enqueued, after_failures=rerun)
    return study


def create_or_join_study(
    study_name: str,
    storage: str,
    directions: Sequence[str],
    settings: OptunaSettings,
    join_existing: bool,
) -> optuna.Study:
    """Create the study, or join it when it exists and ``join_existing`` is set.

    An existing study is never touched without ``join_existing``; joining it with another
    direction is refused. Several directions create a multi-objective study. A study another
    process creates meanwhile is joined with ``join_existing``, else refused.
    """
    rdb = open_storage(storage)
    existing = existing_study(rdb, study_name, settings)
    if existing is not None:
        check_existing(existing, storage, directions, join_existing)
        return existing
    try:
        return optuna.create_study(study_name=study_name, storage=rdb, directions=list(directions),
                                   sampler=settings.sampler, pruner=settings.pruner, load_if_exists=join_existing)
    except optuna.exceptions.DuplicatedStudyError:  # another process created it since existing_study looked
        raise already_exists(study_name, storage)


def existing_study(
    rdb: optuna.storages.BaseStorage, study_name: str, settings: OptunaSettings
) -> Optional[optuna.Study]:
    """The study ``study_name`` of ``rdb`` with the run's sampler and pruner, or ``None`` when there is none."""
    if study_name not in study_names(rdb):
        return None
    return optuna.load_study(study_name=study_name, storage=rdb, sampler=settings.sampler, pruner=settings.pruner)


def holds_no_result(study: optuna.Study) -> bool:
    """Whether the study's trials failed and none finished or runs: each FAILed (or is queued and never ran).

    A study without trials is not one: another process may have just created it.
    """
    states = [trial.state for trial in study.get_trials(deepcopy=False)]
    return TrialState.FAIL in states and all(state in NO_RESULT_STATES for state in states)


def directions_of(study: optuna.Study) -> List[str]:
    """The study's directions, as ``--direction`` names them."""
    return [direction.name.lower() for direction in study.directions]


def check_existing(study: optuna.Study, storage: str, directions: Sequence[str], join_existing: bool) -> None:
    """Refuse to join an existing study without ``join_existing`` (``--skip-if-exists``), or in other directions."""
    if not join_existing:
        raise already_exists(study.study_name, storage)
    if directions_of(study) != list(directions):
        raise ConfigurationError(
            f"study {study.study_name!r} was created to {','.join(directions_of(study))}, but --direction "
            f"{','.join(directions)} was asked for"
        )


def already_exists(study_name: str, storage: str) -> ConfigurationError:
    """The error for a study that exists where ``tune`` would create it."""
    return ConfigurationError(
        f"study {study_name!r} already exists in {storage}; pass --skip-if-exists to continue it, "
        "or choose another --study-name"
    )


def continued_study(
    study: optuna.Study, settings: TuneSettings, optuna_settings: OptunaSettings, search_space: SearchSpace
) -> optuna.Study:
    """The study that holds no result, continued by this run (see the module's docstring); says so in one line.

    It is made again, its failed trials copied, when the run's directions differ or its search space samples a
    parameter in a way Optuna cannot continue (:func:`incompatible_params`; the copies leave those values out).
    """
    directions = list(settings.training.objectives.directions)
    trials = study.get_trials(deepcopy=False)
    changed = sorted(incompatible_params(trials, search_space))
    remade_for = (["--direction"] if directions_of(study) != directions else []) + changed
    logger.warning(
        "Continuing study %r of %s: none of its %d trial(s) finished; the failed ones and their directories "
        "stay%s.", study.study_name, redact_url(settings.storage), len(trials),
        f" (the study is made again for its new {', '.join(remade_for)})" if remade_for else "",
    )
    if not remade_for:
        return study
    attrs, storage = study.user_attrs, study_storage(study)
    optuna.delete_study(study_name=study.study_name, storage=storage)
    remade = optuna.create_study(study_name=study.study_name, storage=storage, directions=directions,
                                 sampler=optuna_settings.sampler, pruner=optuna_settings.pruner)
    remade.add_trials([without_params(trial, changed) for trial in trials])
    for key, value in attrs.items():
        remade.set_user_attr(key, value)
    return remade


def incompatible_params(trials: Sequence[FrozenTrial], search_space: SearchSpace) -> Dict[str, Tuple[Any, Any]]:
    """The parameters ``trials`` sampled in a way the search space changes and Optuna refuses to change
    within a study (another kind, log scale or categorical choices): name → (recorded, new distribution)."""
    new = {h.name: h.distribution for h in search_space.hyperparameters}
    found: Dict[str, Tuple[Any, Any]] = {}
    for trial in trials:
        for name, recorded in trial.distributions.items():
            if name in new and name not in found:
                try:  # what the storage checks when a trial samples the parameter
                    optuna.distributions.check_distribution_compatibility(recorded, new[name])
                except ValueError:
                    found[name] = (recorded, new[name])
    return found


def without_params(trial: FrozenTrial, names: Sequence[str]) -> FrozenTrial:
    """A copy of ``trial`` without the values of the parameters ``names``."""
    copied = copy.deepcopy(trial)
    copied.params = {name: value for name, value in trial.params.items() if name not in names}
    copied.distributions = {name: d for name, d in trial.distributions.items() if name not in names}
    return copied


def check_search_space_fits(study: optuna.Study, search_space: SearchSpace) -> None:
    """Refuse to join a study whose trials sampled a parameter in a way the search space changes and
    Optuna cannot continue (every new trial would fail on it)."""
    changed = sorted(incompatible_params(study.get_trials(deepcopy=False), search_space).items())
    if changed:
        name, (recorded, new) = changed[0]
        raise ConfigurationError(
            f"study {study.study_name!r} samples {name} from {recorded}, which a study cannot change to {new}; "
            "pass the search space it was tuned with or choose another --study-name"
        )


def check_trial_directories(study: Optional[optuna.Study], serialization_dir: str, study_name: str) -> None:
    """Refuse to start when ``serialization_dir`` holds ``trial_N`` directories that ``study`` did not write
    (any, for a study not created yet).

    A new trial must never train into (and overwrite) a directory it does not own.
    """
    if not os.path.isdir(serialization_dir):
        return
    owned = {
        os.path.abspath(str(t.user_attrs.get(SERIALIZATION_DIR_ATTR)))
        for t in (study.get_trials(deepcopy=False) if study is not None else ())
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
            f"that study {study_name!r} did not write; choose a new --serialization-dir"
        )


def check_study_fits(study: optuna.Study, training: TrainingSettings) -> None:
    """Refuse to join a study whose trials optimized other metrics, or were repeated or constrained otherwise:
    their values would not compare. A study that recorded nothing yet and has no trial fits any run."""
    recorded, attrs, name = StoredStudy.read(study), study.user_attrs, study.study_name
    recorded_or_used = bool(study.get_trials(deepcopy=False))
    if METRIC_ATTR in attrs and attrs[METRIC_ATTR] != training.objectives.metrics:
        raise ConfigurationError(
            f"study {name!r} optimizes {attrs[METRIC_ATTR]}, not {training.objectives.metrics}; "
            f"pass --metrics {attrs[METRIC_ATTR]} or choose another --study-name"
        )
    if (REPEATS_ATTR in attrs or recorded_or_used) and recorded.repeats != training.repeats:
        raise ConfigurationError(
            f"study {name!r} repeats each trial with {recorded.repeats.flags()}, not {training.repeats.flags()}; "
            "pass the same flags or choose another --study-name"
        )
    if (CONSTRAINTS_ATTR in attrs or recorded_or_used) and recorded.constraints.texts != training.constraints.texts:
        raise ConfigurationError(
            f"study {name!r} holds its trials to {recorded.constraints.flags()}, not {training.constraints.flags()}; "
            "pass the same --constraint flags or choose another --study-name"
        )


def record_run(study: optuna.Study, training: TrainingSettings, optuna_settings: OptunaSettings) -> None:
    """Record what the trials optimize, how they are repeated and constrained, their config and the sampler
    and pruner (what ``best-params``, ``retrain``, the summary and the report read back, see
    :class:`~allennlp_optuna.study.record.StoredStudy`)."""
    attrs = study.user_attrs
    study.set_user_attr(METRIC_ATTR, training.objectives.metrics)
    if training.repeats.active or REPEATS_ATTR in attrs:  # a continued study may have recorded other repeats
        study.set_user_attr(REPEATS_ATTR, training.repeats.as_attr() if training.repeats.active else None)
    if training.constraints or CONSTRAINTS_ATTR in attrs:
        study.set_user_attr(CONSTRAINTS_ATTR, training.constraints.texts or None)
    study.set_user_attr(CONFIG_ATTR, os.path.abspath(training.config_file))
    study.set_user_attr(SAMPLING_ATTR, optuna_settings.describe(training.objectives.is_multi))

