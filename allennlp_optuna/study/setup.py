"""Creating or joining the study of an ``allennlp tune`` run, after checking that it fits the run.

A study is never changed by a run it does not fit: an existing study is joined only with
``--skip-if-exists``, the same direction(s), metrics, repeats and constraints, and a
serialization directory whose ``trial_N`` directories it wrote itself.
"""
import os
import re
from typing import Sequence

import optuna
from allennlp.common.checks import ConfigurationError

from allennlp_optuna.core.trial_attrs import (
    CONFIG_ATTR,
    CONSTRAINTS_ATTR,
    METRIC_ATTR,
    REPEATS_ATTR,
    SERIALIZATION_DIR_ATTR,
)
from allennlp_optuna.study.settings import TrainingSettings, TuneSettings
from allennlp_optuna.study.enqueue import EnqueuedValues, enqueue_trials
from allennlp_optuna.study.record import StoredStudy
from allennlp_optuna.study.samplers import OptunaSettings
from allennlp_optuna.study.storage import open_storage, study_names

_TRIAL_DIR = re.compile(r"^trial_(\d+)$")


def open_study(settings: TuneSettings, optuna_settings: OptunaSettings, enqueued: Sequence[EnqueuedValues]) -> optuna.Study:
    """Create or join the study of ``settings``, check it fits, record the run, queue the enqueued trials."""
    study = create_or_join_study(
        settings.study_name,
        settings.storage,
        settings.training.objectives.directions,
        optuna_settings,
        join_existing=settings.skip_if_exists,
    )
    check_trial_directories(study, settings.serialization_dir)
    check_study_fits(study, settings.training)
    record_run(study, settings.training)
    os.makedirs(settings.serialization_dir, exist_ok=True)
    enqueue_trials(study, enqueued)
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
    direction is refused. Several directions create a multi-objective study.
    """
    directions = list(directions)
    rdb = open_storage(storage)
    exists = study_name in study_names(rdb)
    if exists and not join_existing:
        raise ConfigurationError(
            f"study {study_name!r} already exists in {storage}; pass --skip-if-exists to continue it, "
            "or choose another --study-name"
        )
    if exists:
        study = optuna.load_study(study_name=study_name, storage=rdb, sampler=settings.sampler, pruner=settings.pruner)
        existing = ",".join(d.name.lower() for d in study.directions)
        if existing != ",".join(directions):
            raise ConfigurationError(
                f"study {study_name!r} was created to {existing}, but --direction {','.join(directions)} was asked for"
            )
        return study
    return optuna.create_study(
        study_name=study_name,
        storage=rdb,
        directions=directions,
        sampler=settings.sampler,
        pruner=settings.pruner,
        load_if_exists=join_existing,
    )


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


def record_run(study: optuna.Study, training: TrainingSettings) -> None:
    """Record what the trials optimize, how they are repeated and constrained, and their config
    (what ``best-params``, ``retrain`` and the report read back, see :class:`~allennlp_optuna.study.record.StoredStudy`)."""
    study.set_user_attr(METRIC_ATTR, training.objectives.metrics)
    if training.repeats.active:
        study.set_user_attr(REPEATS_ATTR, training.repeats.as_attr())
    if training.constraints:
        study.set_user_attr(CONSTRAINTS_ATTR, training.constraints.texts)
    study.set_user_attr(CONFIG_ATTR, os.path.abspath(training.config_file))

