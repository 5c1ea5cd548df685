"""Expected validation performance (Dodge et al. 2019, "Show Your Work").

The curve answers "what best value should I expect if I ran only ``n`` trials?": the
expected maximum of ``n`` values drawn with replacement from the completed trials' values,
for ``n = 1 ... N``. It is computed exactly from the empirical distribution, as allentune
does: with the values sorted, ``P(max of n draws <= v_(i)) = (i / N) ** n``.
"""
from dataclasses import dataclass
from typing import List, Sequence


@dataclass(frozen=True)
class ExpectedPerformance:
    """The expected best value after ``n`` trials and its standard deviation."""

    n: int
    mean: float
    std: float


def expected_best_curve(values: Sequence[float], maximize: bool = True) -> List[ExpectedPerformance]:
    """The expected best of ``n`` draws with replacement from ``values``, for ``n = 1 ... len(values)``.

    Args:
        values: the completed trials' objective values.
        maximize: expect the maximum (``True``) or the minimum (``False``).

    Example::

        >>> [round(p.mean, 4) for p in expected_best_curve([0.0, 1.0])]
        [0.5, 0.75]
        >>> [p.mean for p in expected_best_curve([3.0, 1.0], maximize=False)]
        [2.0, 1.5]
    """
    sign = 1.0 if maximize else -1.0
    ordered = sorted(sign * v for v in values)
    total = len(ordered)
    curve = []
    for n in range(1, total + 1):
        # Probability that the best of n draws is the i-th smallest value (ties included).
        weights = [((i + 1) / total) ** n - (i / total) ** n for i in range(total)]
        mean = sum(w * v for w, v in zip(weights, ordered))
        second_moment = sum(w * v * v for w, v in zip(weights, ordered))
        std = max(second_moment - mean * mean, 0.0) ** 0.5
        curve.append(ExpectedPerformance(n=n, mean=sign * mean, std=std))
    return curve
