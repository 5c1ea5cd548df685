"""Resume, not restart: a retried trial continues from its killed predecessor's last epoch checkpoint.

A worker killed mid-trial (SIGKILL, the out-of-memory killer, preemption) leaves the trial's
AllenNLP epoch checkpoints (``model_state_e*``, ``training_state_e*`` with the optimizer's
state) in its ``trial_N`` directory: :class:`~allennlp_optuna.faults.cleanup.CheckpointCleanup` removes
them only from trials that finished. The retry (same parameters, see
:mod:`allennlp_optuna.faults.recovery`) trains in its own ``trial_M``: :func:`adopt_run` copies the
killed trial's directory there and AllenNLP's own recovery (``train_model(recover=True)``)
continues after the last completed epoch, so a trial killed at epoch 12 of 15 trains 3 more.

Resuming happens only when the killed trial's training config equals the retry's (leaving out
the ``optuna_pruner`` entry, which names the trial): a retry run with other overrides (say
``-o '{"trainer.num_epochs": 1}'``) trains from scratch, with a log line saying why. A run of a
repeated trial (``--seeds``, ``--repeat``) that had finished is not trained again; its
``metrics.json`` is read.

How close a resumed trial comes to an uninterrupted one: AllenNLP replays the epochs before the
checkpoint by reading the training data loader again, so the data order of the later epochs is
the uninterrupted run's; but the replay skips the model's forward passes and the validation
loops. A model without dropout (or other sampling in ``forward``) whose validation data is not
shuffled resumes to exactly the uninterrupted run's metrics (``tests/test_resume.py``). Dropout
draws from torch's random generator in the skipped forward passes, and a shuffled validation
loader (AllenNLP validates with the ``data_loader`` settings when the config has no
``validation_data_loader``, so ``shuffle: true`` shuffles validation too) draws from Python's;
the resumed epochs then see other masks or another order, as a different seed would give. On the
test fixture with shuffled validation, the accuracy came out equal and the validation loss
0.4606 against 0.4668.

A worker killed while AllenNLP writes a checkpoint leaves it cut short (or its training state not
written yet); AllenNLP's recovery would fail on it. :func:`incomplete_checkpoints` finds such a
checkpoint, the retry's copy leaves it out, and the run resumes from the one before (AllenNLP
keeps the last two by default), or trains from scratch when there is none.
"""
import glob
import json
import logging
import os
import re
import shutil
import zipfile
from enum import Enum
from typing import AbstractSet, Any, Dict, List, Optional, Set, Tuple

import optuna
from allennlp.common import Params
from optuna.trial import FrozenTrial

from allennlp_optuna.core.compat import frozen_trial, retry_history, retarget_best_model
from allennlp_optuna.study.config import remove_pruning_callbacks
from allennlp_optuna.core.trial_attrs import METRICS_FILE, SERIALIZATION_DIR_ATTR

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
"""What ``train_model`` writes the training config to; recovery compares it with the retry's."""

_CHECKPOINT = re.compile(r"^(model|training)_state_e(\d+)_b(\d+)(?:_w\d+)?\.th$")
"""AllenNLP's checkpoint files (its ``Checkpointer``'s names): ``model_state_eE_bB.th`` and
``training_state_eE_bB.th``, ``_wR`` per rank when the state is sharded; ``E`` is the number of
epochs completed, and one checkpoint is the files of one ``(E, B)``."""


class RunState(Enum):
    """What a killed trial left of one run: nothing to resume, a checkpoint, or a finished run."""

    FRESH = "fresh"
    CHECKPOINT = "checkpoint"
    FINISHED = "finished"


def resumed_trial(trial: optuna.Trial) -> Optional[FrozenTrial]:
    """The killed trial that ``trial`` retries most recently (``None`` if ``trial`` is no retry).

    A retry of a retry continues from the later one, which holds the newer checkpoints.
    """
    history = retry_history(frozen_trial(trial))
    if not history:
        return None
    previous = [t for t in trial.study.get_trials(deepcopy=False) if t.number == history[-1]]
    return previous[0] if previous else None


def resumable_directory(trial: optuna.Trial) -> Optional[str]:
    """The serialization directory of the killed trial that ``trial`` can resume, if it still exists."""
    previous = resumed_trial(trial)
    directory = previous.user_attrs.get(SERIALIZATION_DIR_ATTR) if previous is not None else None
    return directory if directory and os.path.isdir(directory) else None


def completed_epochs(serialization_dir: str, leaving_out: AbstractSet[str] = frozenset()) -> int:
    """How many epochs the newest checkpoint in ``serialization_dir`` completed (0 without one),
    not counting the files named in ``leaving_out``."""
    epochs = [0]
    for name in os.listdir(serialization_dir):
        match = _CHECKPOINT.match(name)
        if match and match.group(1) == "training" and name not in leaving_out:
            epochs.append(int(match.group(2)))
    return max(epochs)


def finished_run(serialization_dir: str) -> bool:
    """Whether the run in ``serialization_dir`` wrote its ``metrics.json`` whole (a kill can leave it empty)."""
    try:
        with open(os.path.join(serialization_dir, METRICS_FILE)) as metrics:
            return isinstance(json.load(metrics), dict)
    except (OSError, ValueError):
        return False


def incomplete_checkpoints(serialization_dir: str) -> Set[str]:
    """The checkpoint files in ``serialization_dir`` that recovery cannot load: every file of a
    checkpoint whose model or training state is missing or cut short.

    ``torch.save`` writes a zip archive whose directory comes last, so a file cut short by a kill
    does not open as one.
    """
    checkpoints: Dict[Tuple[int, int], Dict[str, str]] = {}
    for name in os.listdir(serialization_dir):
        match = _CHECKPOINT.match(name)
        if match:
            checkpoints.setdefault((int(match.group(2)), int(match.group(3))), {})[name] = match.group(1)
    broken: Set[str] = set()
    for (epochs, _), kinds in checkpoints.items():
        whole = all(_whole(os.path.join(serialization_dir, name)) for name in kinds)
        if set(kinds.values()) != {"model", "training"} or not whole:
            logger.warning("Not resuming from the checkpoint after epoch %d of %s: its worker died while writing "
                           "it; using the one before, if any.", epochs - 1, serialization_dir)
            broken.update(kinds)
    return broken


def _whole(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.infolist())
    except (OSError, zipfile.BadZipFile):
        return False


def adopt_run(source: str, target: str, params: Params) -> RunState:
    """Make ``target`` continue what ``source`` (a killed trial's run) trained, if it can.

    Args:
        source: the killed run's serialization directory.
        target: the retry's serialization directory for the same run; it must not exist yet.
        params: the retry's training config for the run.

    Returns:
        :attr:`RunState.FINISHED` when ``source`` finished (``target`` holds its files),
        :attr:`RunState.CHECKPOINT` when ``target`` now holds its checkpoints and config (train
        with ``recover=True``), :attr:`RunState.FRESH` when there is nothing to continue.
    """
    if not os.path.isdir(source):  # a later run of a repeated trial that the kill came before
        return RunState.FRESH
    finished = finished_run(source)
    broken = set() if finished else incomplete_checkpoints(source)
    if not finished and not completed_epochs(source, leaving_out=broken):
        return RunState.FRESH
    if not same_training(source, params):
        logger.warning(
            "Not resuming from %s: its training config differs from this retry's; training from scratch.", source
        )
        return RunState.FRESH
    copy_run(source, target, with_vocabulary=finished or "distributed" in params, leaving_out=broken)
    if finished:
        logger.warning("%s had finished training before its worker died: reading its metrics, not training again.",
                       source)
        return RunState.FINISHED
    params.to_file(os.path.join(target, CONFIG_FILE))
    for path in glob.glob(os.path.join(glob.escape(target), "training_state_e*.th")):
        retarget_best_model(path, target)
    logger.warning(
        "Resuming the training of %s in %s after its epoch %d.",
        source, os.path.abspath(target), completed_epochs(target) - 1,
    )
    return RunState.CHECKPOINT


def same_training(source: str, params: Params) -> bool:
    """Whether the config ``source`` trained with equals ``params``, apart from the ``optuna_pruner`` entry."""
    path = os.path.join(source, CONFIG_FILE)
    if not os.path.isfile(path):
        return False
    killed = remove_pruning_callbacks(Params.from_file(path).as_dict(quiet=True))
    return killed == remove_pruning_callbacks(params.as_dict(quiet=True))


def copy_run(source: str, target: str, with_vocabulary: bool, leaving_out: AbstractSet[str] = frozenset()) -> None:
    """Copy ``source`` to ``target`` but the files named in ``leaving_out`` (at its top); epoch
    model states are hard-linked where the file system allows.

    AllenNLP only ever creates and deletes ``model_state_e*`` files, never rewrites one, so the
    killed trial's files stay as they were. ``vocabulary/`` is left out unless
    ``with_vocabulary``: a resumed single-process training builds and saves it again (and warns
    when the directory is not empty); distributed training reads it when it recovers.
    """

    def link_or_copy(src: str, dst: str) -> Any:
        if os.path.basename(src).startswith("model_state_e"):
            try:
                os.link(src, dst)
                return dst
            except OSError:
                pass
        return shutil.copy2(src, dst)

    left_out = set(leaving_out) | (set() if with_vocabulary else {"vocabulary"})

    def ignore(directory: str, names: List[str]) -> Set[str]:
        return left_out.intersection(names) if os.path.samefile(directory, source) else set()

    shutil.copytree(source, target, copy_function=link_or_copy, ignore=ignore)

