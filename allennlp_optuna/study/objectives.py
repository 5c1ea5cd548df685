"""What a study optimizes: one or several ``metrics.json`` keys, each with its direction.

``--metrics best_validation_accuracy,num_parameters --direction maximize,minimize`` makes a
multi-objective study: each trial's values are those keys of its ``metrics.json``, and what the
study finds is its Pareto front (the trials no other trial beats on every objective). A key is
any numeric key of ``metrics.json``, a duration AllenNLP writes as ``H:MM:SS.ffffff``
(``training_duration``, read as seconds), or :data:`NUM_PARAMETERS`, the model's trainable
parameter count, which the ``num_parameters`` trainer callback adds to ``metrics.json`` (see
:mod:`allennlp_optuna.trial.callbacks.parameter_count`).

This module imports neither torch nor AllenNLP, so summaries and reports can use it.
"""
import json
import os
import re
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.core.trial_attrs import METRICS_FILE

NUM_PARAMETERS = "num_parameters"
"""The ``metrics.json`` key of the model's trainable parameter count."""

DIRECTIONS = ("minimize", "maximize")

_MINIMIZED_WORDS = {"loss", "perplexity", "ppl", "error", "err", "mse", "mae", "rmse", "wer", "cer",
                    # keys that earlier versions could not read (durations are strings, num_parameters new)
                    "duration", "parameters"}
_DURATION = re.compile(r"^(?:(\d+) days?, )?(\d+):(\d\d):(\d\d(?:\.\d+)?)$")


class ObjectiveError(ValueError):
    """A user-fixable problem with the objectives (the caller turns it into a ``ConfigurationError``)."""


def split_keys(text: str) -> List[str]:
    """``"a, b"`` → ``["a", "b"]``: a comma-separated flag value."""
    return [part.strip() for part in text.split(",") if part.strip()]


def infer_direction(metric: str) -> str:
    """``"minimize"`` for loss/perplexity/error/duration/size-like names, ``"maximize"`` otherwise.

    Example::

        >>> infer_direction("best_validation_loss"), infer_direction("best_validation_accuracy")
        ('minimize', 'maximize')
        >>> infer_direction("num_parameters"), infer_direction("training_duration")
        ('minimize', 'minimize')
    """
    words = re.split(r"[^a-z0-9]+", metric.lower())
    return "minimize" if _MINIMIZED_WORDS.intersection(words) else "maximize"


@dataclass(frozen=True)
class Objectives:
    """The keys a study optimizes and their directions, in order.

    Args:
        keys: ``metrics.json`` keys.
        directions: ``"minimize"`` or ``"maximize"``, one per key.
    """

    keys: Tuple[str, ...]
    directions: Tuple[str, ...]

    @classmethod
    def parse(cls, metrics: str, direction: Optional[str] = None) -> "Objectives":
        """From ``--metrics`` and ``--direction``; a direction left out is inferred from its key's name.

        Example::

            >>> Objectives.parse("best_validation_accuracy,num_parameters").directions
            ('maximize', 'minimize')
        """
        keys = split_keys(metrics)
        if not keys:
            raise ObjectiveError(f"--metrics names no key: {metrics!r}")
        if len(set(keys)) != len(keys):
            raise ObjectiveError(f"--metrics names a key twice: {metrics}")
        directions = split_keys(direction) if direction else [infer_direction(key) for key in keys]
        if len(directions) != len(keys):
            raise ObjectiveError(
                f"--direction gives {len(directions)} direction(s) ({direction}) for {len(keys)} --metrics "
                f"key(s) ({metrics}); give one per key"
            )
        for value in directions:
            if value not in DIRECTIONS:
                raise ObjectiveError(f"--direction must be 'minimize' or 'maximize', got {value!r}")
        return cls(tuple(keys), tuple(directions))

    @property
    def is_multi(self) -> bool:
        """Whether the study has several objectives (Optuna's multi-objective study)."""
        return len(self.keys) > 1

    @property
    def metrics(self) -> str:
        """The keys as ``--metrics`` takes them."""
        return ",".join(self.keys)

    @property
    def direction(self) -> str:
        """The directions as ``--direction`` takes them."""
        return ",".join(self.directions)

    def read(self, serialization_dir: str) -> List[float]:
        """The values of the keys in ``serialization_dir/metrics.json``, in order."""
        path = os.path.join(serialization_dir, METRICS_FILE)
        with open(path, encoding="utf-8") as file:
            metrics = json.load(file)
        return [metric_value(metrics, key, path) for key in self.keys]

    def describe(self) -> str:
        """E.g. ``"maximize best_validation_accuracy, minimize num_parameters"``."""
        return ", ".join(f"{d} {k}" for k, d in zip(self.keys, self.directions))


def metric_value(metrics: Mapping[str, Any], key: str, path: str = METRICS_FILE) -> float:
    """The value of ``key`` as a number: numbers as they are, ``H:MM:SS.ffffff`` durations as seconds.

    Example::

        >>> metric_value({"training_duration": "0:01:02.500000"}, "training_duration")
        62.5
    """
    if key not in metrics:
        usable = sorted(k for k, v in metrics.items() if _as_number(v) is not None)
        hint = f" (add {NUM_PARAMETERS} through allennlp tune or the num_parameters trainer callback)" \
            if key == NUM_PARAMETERS else ""
        raise ObjectiveError(f"metric {key!r} is not in {path}{hint}; choose --metrics from: {', '.join(usable)}")
    number = _as_number(metrics[key])
    if number is None:
        raise ObjectiveError(f"metric {key!r} in {path} is {metrics[key]!r}, not a number or an H:MM:SS duration")
    return number


def _as_number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            days, hours, minutes, seconds = match.groups()
            return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return None


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether values ``a`` are at least as good as ``b`` on every objective and better on one."""
    signs = [1.0 if d == "maximize" else -1.0 for d in directions]
    at_least = all(s * x >= s * y for s, x, y in zip(signs, a, b))
    return at_least and any(s * x > s * y for s, x, y in zip(signs, a, b))


def non_dominated(trials: Sequence[FrozenTrial], directions: Sequence[str]) -> List[FrozenTrial]:
    """The COMPLETE trials among ``trials`` that no other one dominates under ``directions``."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None]
    return [t for t in complete if not any(dominates(o.values, t.values, directions) for o in complete)]


def monitored_metric(metrics: str) -> str:
    """The per-epoch metric that tracks ``metrics``: ``best_validation_X`` → ``validation_X``."""
    if metrics.startswith("best_validation_"):
        return "validation_" + metrics[len("best_validation_"):]
    return metrics
