"""How values, parameters, durations and state counts are written, the same in the console, the summary,
``best-params`` and the report."""
import math
from collections import Counter
from typing import Any, Mapping, Optional, Sequence

from optuna.trial import FrozenTrial, TrialState


def format_seconds(seconds: float) -> str:
    """``"1h02m"``, ``"3m05s"`` or ``"42s"``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def format_value(value: Optional[float]) -> str:
    """A metric value with 4 significant digits, ``-`` for none."""
    return "-" if value is None else f"{value:.4g}"


def format_params(params: Mapping[str, Any]) -> str:
    """``name=value`` pairs separated by spaces, in the order the trial sampled them."""
    return " ".join(f"{name}={value}" for name, value in params.items())


def format_values(keys: Sequence[str], values: Optional[Sequence[float]], std: Optional[Sequence[float]] = None) -> str:
    """``"a=0.8 b=1200"``; with ``std``, ``"a=0.8 ± 0.01 b=1200 ± 0"``."""
    if values is None:
        return ""
    parts = []
    for i, (key, value) in enumerate(zip(keys, values)):
        text = f"{key}={value:.6g}"
        if std is not None and i < len(std) and std[i] is not None and not math.isnan(std[i]):
            text += f" \u00b1 {std[i]:.2g}"
        parts.append(text)
    return " ".join(parts)


def count_states(trials: Sequence[FrozenTrial]) -> str:
    """Trials by state, e.g. ``"2 COMPLETE, 1 PRUNED"`` (empty when there are none)."""
    counts = Counter(t.state.name for t in trials)
    return ", ".join(f"{counts[s.name]} {s.name}" for s in TrialState if counts[s.name])
