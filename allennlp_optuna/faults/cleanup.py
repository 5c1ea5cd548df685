"""Removing a finished trial's epoch checkpoints, which only a resumed training would read.

AllenNLP keeps ``model_state_e*`` and ``training_state_e*`` (with the optimizer's state) so that
``allennlp train -r`` can resume; once a trial has finished they only fill the disk. ``best.th``,
``config.json``, ``vocabulary/``, the metrics and ``out.log`` stay, which is what
``allennlp evaluate``/``predict``, ``retrain`` and the archive of the best trial read.
``allennlp tune --keep-checkpoints`` keeps them.

A trial killed mid-training keeps its checkpoints: its retry resumes from them (see
:mod:`allennlp_optuna.faults.resume`). When the retry finishes, the checkpoints of the trials it
retried go too.
"""
import glob
import os

import optuna
from optuna.trial import FrozenTrial

from allennlp_optuna.core.compat import retry_history
from allennlp_optuna.core.trial_attrs import SERIALIZATION_DIR_ATTR

CHECKPOINT_PATTERNS = ("model_state_e*", "training_state_e*")
"""AllenNLP's per-epoch checkpoint files in a serialization directory."""


def remove_checkpoints(serialization_dir: str) -> int:
    """Delete the epoch checkpoints in ``serialization_dir`` and its run directories
    (``seed_k``, ``fold_v``); return the bytes freed."""
    freed = 0
    for directory, _, _ in os.walk(serialization_dir):
        for pattern in CHECKPOINT_PATTERNS:
            for path in glob.glob(os.path.join(glob.escape(directory), pattern)):
                freed += os.path.getsize(path)
                os.remove(path)
    return freed


class CheckpointCleanup:
    """Study callback: remove the epoch checkpoints of each finished trial and of the killed
    trials it retried (see :func:`remove_checkpoints`)."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if not trial.state.is_finished():
            return
        retried = set(retry_history(trial))
        earlier = [t for t in study.get_trials(deepcopy=False) if t.number in retried] if retried else []
        for finished in [trial, *earlier]:
            directory = finished.user_attrs.get(SERIALIZATION_DIR_ATTR)
            if directory and os.path.isdir(directory):
                remove_checkpoints(directory)
