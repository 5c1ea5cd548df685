"""Archiving the study's best trial once its trials are done: ``model.tar.gz``, as ``allennlp train`` writes it.

Gzipping a trial's weights costs seconds and the disk of another copy of them, so ``allennlp
tune`` archives only the best trial, when it ends (unless ``--archive all``).
"""
import json
import logging
import os
from typing import Optional

import optuna
from allennlp.models.archival import CONFIG_NAME, archive_model

from allennlp_optuna.core.trial_attrs import ARCHIVE_FILE, RUNS_ATTR, SERIALIZATION_DIR_ATTR
from allennlp_optuna.study.record import StoredStudy

logger = logging.getLogger(__name__)


def archive_best_trial(study: optuna.Study) -> Optional[str]:
    """Write the best trial's ``model.tar.gz`` as ``allennlp train`` would have, if it has none.

    Nothing happens when no trial has completed (or, under ``--constraint`` bounds, none
    satisfies them), the study has several objectives (no single best trial) or the best trial's
    directory is not on this machine. A repeated trial's first
    run is archived. The archive is written under a temporary name and renamed, so a reader (or another
    worker archiving the same trial) never sees half of one.

    Returns:
        The archive's path, or ``None``.
    """
    stored = StoredStudy.read(study)
    trial = stored.best_trial()
    if trial is None:
        if stored.constraints:
            logger.info("No completed trial of study %r satisfies its constraints: none archived.", study.study_name)
        return None
    directory = str(trial.user_attrs.get(SERIALIZATION_DIR_ATTR, ""))
    runs = trial.user_attrs.get(RUNS_ATTR)
    if runs:  # a repeated trial (--seeds, --repeat): its first run, as retrain reproduces it
        directory = os.path.join(directory, runs[0]["run"])
    config = os.path.join(directory, CONFIG_NAME)
    path = os.path.join(directory, ARCHIVE_FILE)
    if os.path.exists(path):
        return path
    if not os.path.isfile(config):  # the trial trained on another machine
        return None
    with open(config, encoding="utf-8") as file:
        include_in_archive = json.load(file).get("include_in_archive")
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        archive_model(directory, archive_path=temporary, include_in_archive=include_in_archive)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    logger.info("Archived the best trial, %d: %s", trial.number, path)
    return path
