"""Removing a finished trial's epoch checkpoints, which only a resumed training would read.

AllenNLP keeps ``model_state_e*`` and ``training_state_e*`` (with the optimizer's state) so that
``allennlp train -r`` can resume; once a trial has finished they only fill the disk. ``best.th``,
``config.json``, ``vocabulary/``, the metrics and ``out.log`` stay, which is what
``allennlp evaluate``/``predict``, ``retrain`` and the archive of the best trial read.
``allennlp tune --keep-checkpoints`` keeps them.
"""
import glob
import os

import optuna
from optuna.trial import FrozenTrial

from allennlp_optuna.trial_attrs import SERIALIZATION_DIR_ATTR

CHECKPOINT_PATTERNS = ("model_state_e*", "training_state_e*")
"""AllenNLP's per-epoch checkpoint files in a serialization directory."""


def remove_checkpoints(serialization_dir: str) -> int:
    """Delete the epoch checkpoints in ``serialization_dir``; return the bytes freed."""
    freed = 0
    for pattern in CHECKPOINT_PATTERNS:
        for path in glob.glob(os.path.join(glob.escape(serialization_dir), pattern)):
            freed += os.path.getsize(path)
            os.remove(path)
    return freed


class CheckpointCleanup:
    """Study callback: remove each finished trial's epoch checkpoints (see :func:`remove_checkpoints`)."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        directory = trial.user_attrs.get(SERIALIZATION_DIR_ATTR)
        if trial.state.is_finished() and directory and os.path.isdir(directory):
            remove_checkpoints(directory)
