"""Checking ``--metrics`` and ``--constraint`` keys at the first moment they are known: after a trial's first epoch.

A key that training never reports (a typo, ``best_validation_acc``) would otherwise be found
only in ``metrics.json``, after the whole trial has trained. ``allennlp tune`` adds
``{"type": "optuna_metric_check", "metric": ...}`` (with ``"flag": "--constraint"`` for a
constraint's key) to every trial's ``trainer.callbacks``; after the first epoch's validation it
raises :class:`~allennlp_optuna.core.errors.StudyError` naming the keys that exist, which stops the
study (even with ``--skip-exception``).
"""
import json
import os
from typing import Any, Dict

from allennlp.models.archival import CONFIG_NAME

from allennlp.common import Params
from allennlp.training import GradientDescentTrainer, TrainerCallback

from allennlp_optuna.study.config import METRIC_CHECK_CALLBACK_TYPE, is_metric_check_entry
from allennlp_optuna.core.errors import StudyError
from allennlp_optuna.study.objectives import NUM_PARAMETERS


LATE_KEYS = ("training_start_epoch", "training_epochs")
"""Keys of ``metrics.json`` that training adds only when it ends (``test_*`` ones too)."""


def is_reported_later(metric: str) -> bool:
    """Whether ``metric`` can be in ``metrics.json`` though no epoch reports it."""
    return metric in LATE_KEYS or metric == NUM_PARAMETERS or metric.startswith("test_")


METRICS_FLAG = "--metrics"
CONSTRAINT_FLAG = "--constraint"


def missing_metric_message(metric: str, where: str, metrics: Dict[str, Any], flag: str = METRICS_FLAG) -> str:
    """The message for a ``flag`` key (``--metrics``, ``--constraint``) that ``metrics`` (of ``where``) lacks,
    naming the numeric keys."""
    numeric = sorted(k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    if flag == METRICS_FLAG:
        return f"metric {metric!r} is not among the metrics of {where}; choose --metrics from: {', '.join(numeric)}"
    return f"{flag} key {metric!r} is not among the metrics of {where}; choose a {flag} key from: {', '.join(numeric)}"


@TrainerCallback.register(METRIC_CHECK_CALLBACK_TYPE)
class MetricCheckCallback(TrainerCallback):
    """Stop training after the first epoch when the optimized metric is not among its metrics.

    Args:
        serialization_dir: the trial's serialization directory (AllenNLP passes it).
        metric: the ``metrics.json`` key the study optimizes (``--metrics``) or constrains.
        flag: the option that named ``metric``, for the message: ``--metrics`` or ``--constraint``.
    """

    def __init__(self, serialization_dir: str, metric: str, flag: str = METRICS_FLAG) -> None:
        super().__init__(serialization_dir)
        self.metric = metric
        self.flag = flag
        self.checked = False

    def on_start(self, trainer: GradientDescentTrainer, is_primary: bool = True, **kwargs: Any) -> None:
        super().on_start(trainer, is_primary=is_primary, **kwargs)
        if is_primary:
            forget_metric_check(self.serialization_dir)

    def on_epoch(self, trainer: GradientDescentTrainer, metrics: Dict[str, Any], epoch: int,
                 is_primary: bool = True, **kwargs: Any) -> None:
        if self.checked or not is_primary:
            return
        self.checked = True
        if self.metric not in metrics and not is_reported_later(self.metric):
            where = f"{self.serialization_dir} after epoch {epoch}"
            raise StudyError(missing_metric_message(self.metric, where, metrics, self.flag))


def forget_metric_check(serialization_dir: str) -> None:
    """Take the check's entry out of the trial's ``config.json`` (AllenNLP wrote it before training).

    The trial's config (and the archive made from it) stays the config the user's values give,
    which ``allennlp train`` and ``best-params`` reproduce; the check matters only while ``tune`` runs.
    """
    path = os.path.join(serialization_dir, CONFIG_NAME)
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as file:
        config = json.load(file)
    trainer = config.get("trainer")
    if not isinstance(trainer, dict) or not isinstance(trainer.get("callbacks"), list):
        return
    trainer["callbacks"] = [c for c in trainer["callbacks"] if not is_metric_check_entry(c)]
    if not trainer["callbacks"]:
        del trainer["callbacks"]
    with open(path, "w", encoding="utf-8") as file:
        json.dump(config, file, indent=4)


def with_metric_check(params: Params, metric: str, flag: str = METRICS_FLAG) -> Params:
    """The config with the metric check first in ``trainer.callbacks`` (before a pruner reads the metric)."""
    config = params.as_dict(quiet=True)
    trainer = config.setdefault("trainer", {})
    check = {"type": METRIC_CHECK_CALLBACK_TYPE, "metric": metric, **({} if flag == METRICS_FLAG else {"flag": flag})}
    trainer["callbacks"] = [check, *(trainer.get("callbacks") or [])]
    return Params(config)
