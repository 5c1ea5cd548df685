"""Pruning: stop unpromising trials after an epoch through an AllenNLP ``TrainerCallback``.

After each epoch's validation the primary training worker reports the monitored metric to the
trial (the epoch is the step) and asks the study's pruner whether to stop. In a config, the
callback is listed as ``{type: 'optuna_pruner'}`` in ``trainer.callbacks``; the executor fills
the entry with the trial's identity, so the callback finds its trial in any process, including
the workers that ``distributed: {cuda_devices: [...]}`` training spawns::

    {"type": "optuna_pruner", "monitor": "validation_accuracy", "storage": "sqlite:///study.db",
     "study_name": "imdb", "trial_id": 7, "pruner": {"type": "MedianPruner", "attributes": {...}}}

From a Python script the callback takes the live trial instead, as in the AllenNLP guide::

    trainer = GradientDescentTrainer(
        model, optimizer, data_loader, validation_data_loader=dev_loader, num_epochs=10,
        callbacks=[AllenNLPPruningCallback(trial, "validation_accuracy")],
    )
    trainer.train()  # raises optuna.TrialPruned when the pruner says so

In distributed training every worker takes the primary's decision (a broadcast), so all of
them stop at the same epoch: the primary raises (``TrialPruned`` or the real error) and the
others exit quietly, and :func:`raise_worker_failure` turns the spawned processes' failure
back into that exception.
"""
import inspect
import json
import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Dict, List, NoReturn, Optional

import optuna
import torch
import torch.distributed as dist
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.training import GradientDescentTrainer, TrainerCallback
from optuna.trial import TrialState

from allennlp_optuna.core.compat import has_pruner_argument, pruner_argument, rdb_storage, running_trial, study_storage, trial_id
from allennlp_optuna.study.config import PRUNING_CALLBACK_TYPE, is_pruning_entry
from allennlp_optuna.core.errors import StudyError
from allennlp_optuna.core.redaction import redact_url, restore_password
from allennlp_optuna.faults.recovery import recoverable_storage
from allennlp_optuna.faults.resume import completed_epochs
from allennlp_optuna.study.samplers import OptunaSettings
from allennlp_optuna.study.storage import JournalFileStorage

logger = logging.getLogger(__name__)

_CONTINUE, _PRUNE, _FAIL = 0, 1, 2


@dataclass(frozen=True)
class TrialIdentity:
    """What a training process needs to rebuild a running trial from its storage.

    Args:
        storage: the study's storage URL, its password hidden (see :mod:`allennlp_optuna.core.redaction`).
        study_name: the study's name.
        trial_id: the trial's storage id (:func:`~allennlp_optuna.core.compat.trial_id`, not its number).
        pruner: the study's pruner as ``{"type": ..., "attributes": {...}}`` (see
            :func:`pruner_spec`); a storage does not keep the pruner.
    """

    storage: str
    study_name: str
    trial_id: int
    pruner: Optional[Dict[str, Any]] = None

    def load(self) -> Optional[optuna.Trial]:
        """The trial, or ``None`` (with a warning) when it is no longer running."""
        study = optuna.load_study(
            study_name=self.study_name,
            storage=recoverable_storage(restore_password(self.storage), heartbeat_interval=None),
            # Building a Trial runs the sampler's hooks; a random sampler's have no effects.
            sampler=optuna.samplers.RandomSampler(),
            pruner=OptunaSettings.from_dict({"pruner": self.pruner}).pruner if self.pruner else None,
        )
        frozen = study_storage(study).get_trial(self.trial_id)
        if frozen.state != TrialState.RUNNING:
            logger.warning(
                "Trial %d of study %r is %s, not running; the %r callback will not prune this training.",
                frozen.number,
                self.study_name,
                frozen.state.name,
                PRUNING_CALLBACK_TYPE,
            )
            return None
        return running_trial(study, self.trial_id)


@dataclass(frozen=True)
class RepeatedRun:
    """Where a run of a repeated trial (``--seeds``, ``--repeat``) stands among the trial's runs.

    Run ``k`` reports, at epoch ``e``, the mean of its own value and those of the earlier runs
    that reached epoch ``e`` (their ``metrics_epoch_e.json``), at step ``step_offset + e``
    (``k * num_epochs + e``): every trial's step means the same runs and epoch, so pruners
    compare like with like.

    Args:
        earlier_runs: serialization directories of the trial's earlier runs.
        step_offset: added to the epoch to give the reported step.
    """

    earlier_runs: List[str]
    step_offset: int = 0

    def mean_with_earlier(self, monitor: str, value: float, epoch: int) -> float:
        """The mean of ``value`` and the earlier runs' ``monitor`` at ``epoch``."""
        values = [value]
        for directory in self.earlier_runs:
            path = os.path.join(directory, f"metrics_epoch_{epoch}.json")
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as file:
                    earlier = json.load(file).get(monitor)
                if isinstance(earlier, (int, float)):
                    values.append(float(earlier))
        return sum(values) / len(values)


@TrainerCallback.register(PRUNING_CALLBACK_TYPE, constructor="from_trial_identity")
class AllenNLPPruningCallback(TrainerCallback):
    """Report a per-epoch validation metric to an Optuna trial and prune it when told to.

    Args:
        trial: the running trial; ``None`` makes the callback do nothing.
        monitor: the key of the trainer's per-epoch metrics to report, e.g.
            ``"validation_accuracy"``; it must be there after the first epoch.
        serialization_dir: the trainer's serialization directory (AllenNLP passes it).
    """

    def __init__(
        self, trial: Optional[optuna.Trial], monitor: str, serialization_dir: Optional[str] = None
    ) -> None:
        super().__init__(serialization_dir or "")
        self.trial = trial
        self.monitor = monitor
        self.identity: Optional[TrialIdentity] = None
        self.repeated: Optional[RepeatedRun] = None

    @classmethod
    def from_trial_identity(
        cls,
        serialization_dir: str,
        monitor: Optional[str] = None,
        storage: Optional[str] = None,
        study_name: Optional[str] = None,
        trial_id: Optional[int] = None,
        pruner: Optional[Dict[str, Any]] = None,
        earlier_runs: Optional[List[str]] = None,
        step_offset: int = 0,
    ) -> "AllenNLPPruningCallback":
        """Build the callback from a config entry ``{type: 'optuna_pruner', ...}``.

        The executor fills the arguments (see :func:`with_pruning_callback`). The trial is
        rebuilt on the primary worker when training starts, so other workers open no storage.
        Without them (plain ``allennlp train``) the callback warns and does nothing.

        Args:
            serialization_dir: given by AllenNLP.
            monitor: per-epoch metric key, from ``--metrics``.
            storage: see :class:`TrialIdentity`.
            study_name: see :class:`TrialIdentity`.
            trial_id: see :class:`TrialIdentity`.
            pruner: see :class:`TrialIdentity`.
            earlier_runs: see :class:`RepeatedRun` (a repeated trial's run).
            step_offset: see :class:`RepeatedRun`.
        """
        callback = cls(None, monitor or "", serialization_dir)
        if earlier_runs is not None:
            callback.repeated = RepeatedRun(list(earlier_runs), step_offset)
        if storage is not None and study_name is not None and trial_id is not None:
            callback.identity = TrialIdentity(storage, study_name, trial_id, pruner)
        return callback

    def on_start(self, trainer: GradientDescentTrainer, is_primary: bool = True, **kwargs: Any) -> None:
        super().on_start(trainer, is_primary=is_primary, **kwargs)
        if not is_primary or self.trial is not None:
            return
        if self.identity is None:
            logger.warning(
                "The %r callback has no trial (training outside `allennlp tune`); it will not prune.",
                PRUNING_CALLBACK_TYPE,
            )
        else:
            self.trial = self.identity.load()
            self._report_replayed_epochs()

    def _report_replayed_epochs(self) -> None:
        """Report the epochs that a resumed training replays from its checkpoint.

        A retry that continues a killed trial (see :mod:`allennlp_optuna.faults.resume`) trains only the
        epochs after the checkpoint; the earlier ones' metrics are in the copied
        ``metrics_epoch_E.json``, and are reported as the killed trial reported them, so the
        retry's intermediate values are complete. A fresh training has no checkpoint: nothing.
        """
        for epoch in range(completed_epochs(self.serialization_dir) if self.trial is not None else 0):
            path = os.path.join(self.serialization_dir, f"metrics_epoch_{epoch}.json")
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as file:
                    self._report(json.load(file), epoch)

    def on_epoch(
        self,
        trainer: GradientDescentTrainer,
        metrics: Dict[str, Any],
        epoch: int,
        is_primary: bool = True,
        **kwargs: Any,
    ) -> None:
        decision, error = _CONTINUE, None
        if is_primary and self.trial is not None:
            try:
                self._report(metrics, epoch)
                if self.trial.should_prune():
                    decision = _PRUNE
            except Exception as exc:  # every worker must learn that the primary stops
                decision, error = _FAIL, exc
        decision = _agree(decision, trainer)
        if decision == _CONTINUE:
            return
        if not is_primary:
            # The primary raises the real reason; a quiet exit keeps it the one that surfaces.
            logger.info("Worker stops at epoch %d: the primary worker stopped the trial.", epoch)
            raise SystemExit(0)
        if error is not None:
            raise error
        raise optuna.TrialPruned(f"Trial was pruned at epoch {epoch}.")

    def _report(self, metrics: Dict[str, Any], epoch: int) -> None:
        """Report the monitored value of ``epoch`` (a repeated run's: the mean with earlier runs, offset)."""
        value, step = self._monitored_value(metrics, epoch), epoch
        if self.repeated is not None:
            value = self.repeated.mean_with_earlier(self.monitor, value, epoch)
            step += self.repeated.step_offset
        assert self.trial is not None
        self.trial.report(value, step=step)

    def _monitored_value(self, metrics: Dict[str, Any], epoch: int) -> float:
        if self.monitor not in metrics:
            available = sorted(
                k for k, v in metrics.items() if k.startswith(("validation_", "training_")) and isinstance(v, (int, float))
            )
            raise ConfigurationError(
                f"{PRUNING_CALLBACK_TYPE}: metric {self.monitor!r} is not among the metrics of epoch {epoch} "
                f"({', '.join(available)}); the pruner follows --metrics (best_validation_X reports "
                "validation_X), so choose --metrics for one of them"
            )
        return float(metrics[self.monitor])


def _agree(decision: int, trainer: GradientDescentTrainer) -> int:
    """The primary worker's decision, on every worker of a distributed training."""
    if not (dist.is_available() and dist.is_initialized()):
        return decision
    device = trainer.cuda_device if dist.get_backend() == "nccl" else torch.device("cpu")
    shared = torch.tensor([decision], dtype=torch.long, device=device)
    dist.broadcast(shared, src=0)
    return int(shared.item())


def pruner_spec(pruner: optuna.pruners.BasePruner) -> Dict[str, Any]:
    """Describe one of ``optuna.pruners`` as the ``--optuna-param-path`` JSON builds it.

    A spawned training worker cannot receive the pruner object (the storage does not keep
    it), so it gets this description and builds an equal pruner. Wrapped pruners are
    described recursively.

    Example::

        >>> pruner_spec(optuna.pruners.ThresholdPruner(lower=0.5))
        {'type': 'ThresholdPruner', 'attributes': {'lower': 0.5, 'n_warmup_steps': 0, 'interval_steps': 1}}
    """
    cls = type(pruner)
    if getattr(optuna.pruners, cls.__name__, None) is not cls:
        raise ConfigurationError(
            f"the {PRUNING_CALLBACK_TYPE} callback can hand only pruners of optuna.pruners to training "
            f"workers, not {cls.__module__}.{cls.__name__}; use AllenNLPPruningCallback(trial, monitor) "
            "in your own training script instead"
        )
    attributes: Dict[str, Any] = {}
    for name in inspect.signature(cls).parameters:
        if not has_pruner_argument(pruner, name):
            raise ConfigurationError(f"cannot read argument {name!r} of {cls.__name__} (optuna {optuna.__version__})")
        value = pruner_argument(pruner, name)
        if isinstance(value, optuna.pruners.BasePruner):
            value = pruner_spec(value)
        elif isinstance(value, float) and math.isinf(value):
            continue  # an open bound (ThresholdPruner): the default, and JSON has no infinity
        attributes[name] = value
    return {"type": cls.__name__, "attributes": attributes}


def _pruning_entries(config: Dict[str, Any]) -> List[Dict[str, Any]]:
    callbacks = config.get("trainer", {}).get("callbacks") or []
    return [c for c in callbacks if is_pruning_entry(c)]


def has_pruning_callback(params: Params) -> bool:
    """Whether the config lists ``{type: 'optuna_pruner'}`` in ``trainer.callbacks``."""
    return bool(_pruning_entries(params.as_dict(quiet=True)))


def with_pruning_callback(
    params: Params, trial: optuna.Trial, monitor: str, add: bool = False, repeated: Optional[RepeatedRun] = None
) -> Params:
    """The config with every ``optuna_pruner`` entry filled with ``trial``'s identity.

    Args:
        params: a trial's training config.
        trial: the running trial the callback reports to.
        monitor: the per-epoch metric to report (see :func:`monitored_metric`).
        add: append an entry when the config has none.
        repeated: for a run of a repeated trial, its earlier runs and step offset.

    Returns:
        ``params`` unchanged when there is nothing to fill, else new ``Params``.
    """
    config = params.as_dict(quiet=True)
    entries = _pruning_entries(config)
    if not entries and not add:
        return params
    if not entries:
        entries = [{"type": PRUNING_CALLBACK_TYPE}]
        config["trainer"]["callbacks"] = list(config["trainer"].get("callbacks") or []) + entries
    identity = {
        "monitor": monitor,
        "storage": redact_url(storage_url(trial.study)),  # configs are archived and shared
        "study_name": trial.study.study_name,
        "trial_id": trial_id(trial),
        "pruner": pruner_spec(trial.study.pruner),
    }
    if repeated is not None:
        identity.update(earlier_runs=repeated.earlier_runs, step_offset=repeated.step_offset)
    for entry in entries:
        if entry.get("monitor", monitor) != monitor:
            logger.warning(
                "The %r callback monitors %r, which follows the optimized metric, not %r as the config says.",
                PRUNING_CALLBACK_TYPE,
                monitor,
                entry["monitor"],
            )
        entry.update(identity)
    return Params(config)


def storage_url(study: optuna.Study) -> str:
    """The full URL (or journal file) of ``study``'s storage, which training processes open; refused for
    in-memory studies."""
    storage = rdb_storage(study)
    if not isinstance(storage, (optuna.storages.RDBStorage, JournalFileStorage)):
        raise ConfigurationError(
            f"the {PRUNING_CALLBACK_TYPE} callback reaches its trial through the study's storage, but study "
            f"{study.study_name!r} is kept in {type(storage).__name__}, which training processes cannot open; "
            "create the study with a storage URL such as storage='sqlite:///study.db'"
        )
    return storage.url


def plan_pruning(
    params: Params, pruner: Optional[optuna.pruners.BasePruner], config_file: str, multi_objective: bool = False
) -> bool:
    """Decide, before the first trial, whether ``tune`` adds the pruning callback; say so.

    The callback is added when the study has a pruner (other than ``NopPruner``) and the
    config lists none. Whenever trials will be pruned, a trainer ``patience`` is warned about.

    Args:
        params: the config evaluated with example values.
        pruner: the pruner named in ``--optuna-param-path``, if any.
        config_file: the config's path, for messages.
        multi_objective: the study has several objectives, which Optuna cannot prune: a
            configured pruner is warned about once and no trial is pruned.

    Returns:
        Whether every trial's config gets ``{type: 'optuna_pruner'}`` added.
    """
    if multi_objective:
        if pruner is not None and not isinstance(pruner, optuna.pruners.NopPruner) or has_pruning_callback(params):
            logger.warning(
                "Optuna does not prune multi-objective trials: the %s is not used and every trial trains "
                "all its epochs (%r callbacks are removed from the trials' configs).",
                type(pruner).__name__ if pruner is not None else "pruner",
                PRUNING_CALLBACK_TYPE,
            )
        return False
    listed = has_pruning_callback(params)
    add = not listed and pruner is not None and not isinstance(pruner, optuna.pruners.NopPruner)
    if add:
        logger.info(
            "The study's pruner is %s and %s lists no %r callback: adding it to every trial's "
            "trainer.callbacks so that trials can be pruned.",
            type(pruner).__name__,
            config_file,
            PRUNING_CALLBACK_TYPE,
        )
    patience = params.as_dict(quiet=True).get("trainer", {}).get("patience")
    if (listed or add) and patience is not None:
        logger.warning(
            "trainer.patience = %s in %s: early stopping can end a trial as COMPLETE before the "
            "pruner sees its later epochs; remove `patience` to leave stopping to the pruner.",
            patience,
            config_file,
        )
    return add


def raise_worker_failure(error: Exception) -> NoReturn:
    """Re-raise a distributed training's failure as what the primary worker raised.

    ``torch.multiprocessing`` reports a worker's exception as text. A pruned trial becomes
    ``optuna.TrialPruned`` and a configuration error a ``ConfigurationError``, both caused by
    ``error`` (whose message holds the worker's traceback); anything else is re-raised as is.
    """
    last_line = str(error).strip().splitlines()[-1] if str(error).strip() else ""
    for exception_type in (optuna.TrialPruned, StudyError, ConfigurationError):
        prefix = f"{exception_type.__module__}.{exception_type.__name__}: "
        if last_line.startswith(prefix):
            raise exception_type(last_line[len(prefix) :]) from error
    raise error
