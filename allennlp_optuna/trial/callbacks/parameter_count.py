"""The ``num_parameters`` trainer callback: the model's trainable parameter count in ``metrics.json``.

``allennlp tune --metrics best_validation_accuracy,num_parameters`` adds it to every trial's
``trainer.callbacks``; in any config it can be listed by hand::

    trainer: { callbacks: [{ type: 'num_parameters' }] }

When training ends AllenNLP's trainer passes its final metrics to ``on_end`` before writing them
to ``metrics.json``, so the count lands there beside the validation metrics.
"""
from typing import Any, Dict, Optional

from allennlp.common import Params
from allennlp.training import GradientDescentTrainer, TrainerCallback

from allennlp_optuna.study.objectives import NUM_PARAMETERS


@TrainerCallback.register(NUM_PARAMETERS)
class ParameterCountCallback(TrainerCallback):
    """Add ``num_parameters`` (parameters with ``requires_grad``) to the trainer's final metrics."""

    def on_end(
        self,
        trainer: GradientDescentTrainer,
        metrics: Optional[Dict[str, Any]] = None,
        epoch: Optional[int] = None,
        is_primary: bool = True,
        **kwargs: Any,
    ) -> None:
        if metrics is not None:
            metrics[NUM_PARAMETERS] = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)


def with_parameter_count(params: Params) -> Params:
    """``params`` with the ``num_parameters`` callback in ``trainer.callbacks`` (once)."""
    config = params.as_dict(quiet=True)
    callbacks = list(config.setdefault("trainer", {}).get("callbacks") or [])
    if not any(isinstance(c, dict) and c.get("type") == NUM_PARAMETERS for c in callbacks):
        config["trainer"]["callbacks"] = callbacks + [{"type": NUM_PARAMETERS}]
    return Params(config)
