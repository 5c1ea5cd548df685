"""The objective ``study.optimize`` calls for each trial of ``allennlp tune``: sample, train, return the values."""
import os
import traceback
from dataclasses import dataclass, replace
from typing import Callable, List, Optional, Union

import optuna
from optuna.trial import FrozenTrial

from allennlp_optuna.core.errors import StudyError
from allennlp_optuna.core.trial_attrs import FAIL_REASON_ATTR, PREEMPTED_ATTR, STUDY_ERROR_ATTR
from allennlp_optuna.faults.cleanup import CheckpointCleanup
from allennlp_optuna.faults.preemption import Preempted
from allennlp_optuna.faults.resume import resumable_directory
from allennlp_optuna.parallel.plan import WorkerPlan, with_overrides
from allennlp_optuna.study.settings import TuneSettings
from allennlp_optuna.study.search_space import SearchSpace
from allennlp_optuna.trial.executor import TrialExecutor
from allennlp_optuna.trial.memory import TrialMemory

StudyCallback = Callable[[optuna.Study, FrozenTrial], None]


def trial_directory(serialization_dir: str, trial_number: int) -> str:
    """``SERIALIZATION_DIR/trial_N``: where trial N trains."""
    return os.path.join(serialization_dir, f"trial_{trial_number}")


@dataclass(frozen=True)
class TrialObjective:
    """The objective ``study.optimize`` calls: sample, train in ``trial_N``, return the metric.

    A failing trial keeps its traceback in the ``fail_reason`` user attribute; one that SLURM
    stopped, why, and the signal in ``preempted`` (see :mod:`allennlp_optuna.faults.preemption`). Unless every trial
    is archived (``--archive all``) no trial writes ``model.tar.gz`` (``tune`` archives the best
    one when it ends); every trial keeps ``config.json``, ``best.th`` and ``vocabulary/``, which
    ``allennlp evaluate`` and ``allennlp predict`` also accept (pass the directory). The
    executors leave a trial's memory to :meth:`study_callbacks`, which ``study.optimize`` must
    be given too.

    Args:
        settings: the run's settings.
        search_space: the hyperparameters each trial samples.
        add_pruning_callback: add ``{type: 'optuna_pruner'}`` to configs that list none.
    """

    settings: TuneSettings
    search_space: SearchSpace
    add_pruning_callback: bool = False

    def __call__(self, trial: optuna.Trial) -> Union[float, List[float]]:
        try:
            self.search_space.suggest(trial)
            return self.executor(trial, resumable_directory(trial)).run()
        except optuna.TrialPruned:
            raise
        except Preempted as stopped:  # retried from its checkpoint; no traceback to keep
            trial.set_user_attr(FAIL_REASON_ATTR, str(stopped))
            trial.set_user_attr(PREEMPTED_ATTR, stopped.signal_name)
            raise
        except StudyError as error:
            trial.set_user_attr(FAIL_REASON_ATTR, traceback.format_exc())
            trial.set_user_attr(STUDY_ERROR_ATTR, error.message)
            raise
        except BaseException:
            trial.set_user_attr(FAIL_REASON_ATTR, traceback.format_exc())
            raise

    def executor(self, trial: optuna.Trial, resume_from: Optional[str] = None) -> TrialExecutor:
        """The executor that trains ``trial`` in ``trial_N``, continuing ``resume_from`` (a killed
        trial's directory, see :mod:`allennlp_optuna.faults.resume`) when it can."""
        return TrialExecutor(
            trial,
            self.settings.training,
            trial_directory(self.settings.serialization_dir, trial.number),
            add_pruning_callback=self.add_pruning_callback,
            release_memory=False,  # the TrialMemory of study_callbacks() does it, after Optuna records the trial
            resume_from=resume_from,
        )

    def for_worker(self, plan: WorkerPlan) -> "TrialObjective":
        """This objective as the worker of ``plan`` runs it: its trainer on the worker's devices."""
        training = self.settings.training
        training = replace(training, overrides=with_overrides(training.overrides, plan.config_overrides()))
        return replace(self, settings=replace(self.settings, training=training))

    def study_callbacks(self) -> List[StudyCallback]:
        """The study callbacks this objective needs: :class:`TrialMemory` frees what each trial held,
        :class:`~allennlp_optuna.faults.cleanup.CheckpointCleanup` removes its epoch checkpoints (unless
        ``keep_checkpoints``), :func:`stop_on_study_error` ends the study on an error every trial would hit.

        Freeing memory after Optuna has recorded the trial, rather than in the executor, lets a
        pruned or failed trial's traceback (which holds the model) go first.
        """
        cleanup = [] if self.settings.keep_checkpoints else [CheckpointCleanup()]
        return [TrialMemory(), *cleanup, stop_on_study_error]


def stop_on_study_error(study: optuna.Study, trial: FrozenTrial) -> None:
    """Study callback: raise the :class:`~allennlp_optuna.core.errors.StudyError` that failed ``trial``.

    ``--skip-exception`` lets Optuna record a failing trial and go on; an error that every
    trial would hit (a ``--metrics`` key that training never reports) stops the study anyway.
    """
    message = trial.user_attrs.get(STUDY_ERROR_ATTR)
    if message is not None:
        raise StudyError(message)
