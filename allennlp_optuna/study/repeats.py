"""Repeated trials: each trial trains several runs and its value is their mean.

``--seeds K`` trains every trial K times, run ``k`` with AllenNLP's ``random_seed``,
``numpy_seed`` and ``pytorch_seed`` each the config's own plus ``k`` (run 0 trains exactly the
config's seeds, so a rerun reproduces every run). ``--repeat NAME=V1,V2,...`` trains one run per
value of ``std.extVar(NAME)``, a fold index for cross-validation, say. Given both, every value is
trained with every seed. Run ``k`` of trial N trains in ``trial_N/seed_k`` (``trial_N/fold_1``,
``trial_N/fold_1_seed_0``); the trial's values are the means over its runs, and the
:data:`~allennlp_optuna.core.trial_attrs.RUNS_ATTR` and
:data:`~allennlp_optuna.core.trial_attrs.VALUES_STD_ATTR` user attributes keep each run's values and
their standard deviation (the sample one, ``statistics.stdev``; 0 for one run).
"""
import re
import statistics
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from allennlp.common.checks import ConfigurationError

SEED_DEFAULTS = {"random_seed": 13370, "numpy_seed": 1337, "pytorch_seed": 133}
"""AllenNLP's seeds (``allennlp.common.util.prepare_environment``) when a config sets none."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass(frozen=True)
class Run:
    """One training run of a repeated trial.

    Args:
        index: its position among the trial's runs, from 0.
        name: its directory's name inside ``trial_N`` (``seed_1``, ``fold_0``).
        seed_offset: added to each of the config's seeds (0 keeps them).
        ext_vars: extra ``std.extVar`` values (the ``--repeat`` variable).
    """

    index: int
    name: str
    seed_offset: int = 0
    ext_vars: Dict[str, str] = field(default_factory=dict)

    def seeds(self, config: Mapping[str, Any]) -> Dict[str, int]:
        """The seed keys to set in ``config`` for this run (none for offset 0: the config's own)."""
        if self.seed_offset == 0:
            return {}
        seeds = {}
        for key, default in SEED_DEFAULTS.items():
            base = config.get(key)
            seeds[key] = (default if base is None else int(base)) + self.seed_offset
        return seeds


@dataclass(frozen=True)
class RepeatPlan:
    """The runs every trial trains, parsed from ``--seeds`` and ``--repeat`` (:meth:`parse`).

    Args:
        seeds: how many seeds (``--seeds K``); ``None`` trains the config's own seeds only.
        variable: the ``std.extVar`` that ``--repeat NAME=V1,V2,...`` varies; ``None`` for none.
        values: the values of ``variable``, in order.

    Example::

        >>> [run.name for run in RepeatPlan.parse(seeds=2, repeat="fold=0,1").runs()]
        ['fold_0_seed_0', 'fold_0_seed_1', 'fold_1_seed_0', 'fold_1_seed_1']
    """

    seeds: Optional[int] = None
    variable: Optional[str] = None
    values: Tuple[str, ...] = ()

    @classmethod
    def parse(cls, seeds: Optional[int] = None, repeat: Optional[str] = None) -> "RepeatPlan":
        """The plan of ``--seeds K`` and ``--repeat NAME=V1,V2,...``; one ``ConfigurationError`` line for a bad value."""
        if seeds is not None and seeds < 1:
            raise ConfigurationError(f"--seeds must be at least 1, got {seeds}")
        if repeat is None:
            return cls(seeds)
        name, equals, values_text = repeat.partition("=")
        values = [v.strip() for v in values_text.split(",") if v.strip()]
        name = name.strip()
        if not equals or not _NAME.match(name) or not values:
            raise ConfigurationError(f"--repeat must look like NAME=V1,V2,... (e.g. fold=0,1,2), got {repeat!r}")
        if len(set(values)) != len(values):
            raise ConfigurationError(f"--repeat lists a value twice: {repeat}")
        unsafe = [v for v in values if not _SAFE_VALUE.match(v)]
        if unsafe:
            raise ConfigurationError(
                f"--repeat value {unsafe[0]!r} cannot name a directory; use letters, digits, '_', '.', '+' or '-'"
            )
        return cls(seeds, name, tuple(values))

    @property
    def active(self) -> bool:
        """Whether trials train in runs (``trial_N/<run>``) rather than in ``trial_N`` itself."""
        return self.seeds is not None or self.variable is not None

    @property
    def repeat(self) -> Optional[str]:
        """``--repeat``'s value, ``NAME=V1,V2,...`` (``None`` without it)."""
        return None if self.variable is None else f"{self.variable}={','.join(self.values)}"

    def flags(self) -> str:
        """``--seeds 3 --repeat fold=0,1``, or ``no --seeds or --repeat``."""
        parts = ([f"--seeds {self.seeds}"] if self.seeds else []) + ([f"--repeat {self.repeat}"] if self.repeat else [])
        return " ".join(parts) or "no --seeds or --repeat"

    @property
    def extra_ext_vars(self) -> Dict[str, str]:
        """The ext vars the config may read besides the search space (the first run's)."""
        return {self.variable: self.values[0]} if self.variable is not None else {}

    def runs(self) -> List[Run]:
        """Every trial's runs, in the order they train; empty without ``--seeds`` and ``--repeat``."""
        if not self.active:
            return []
        runs: List[Run] = []
        for value in self.values or ("",):
            for seed in range(self.seeds or 1):
                parts = [f"{self.variable}_{value}"] if self.variable is not None else []
                if self.seeds is not None:
                    parts.append(f"seed_{seed}")
                ext_vars = {self.variable: value} if self.variable is not None else {}
                runs.append(Run(len(runs), "_".join(parts), seed, ext_vars))
        return runs

    def as_attr(self) -> Dict[str, Any]:
        """The plan as a study user attribute (read back by ``retrain``)."""
        return {"seeds": self.seeds, "repeat": self.repeat}

    @classmethod
    def from_attr(cls, attr: Optional[Mapping[str, Any]]) -> "RepeatPlan":
        """The plan recorded by :meth:`as_attr`; no repeats when ``attr`` is ``None``."""
        attr = attr or {}
        return cls.parse(attr.get("seeds"), attr.get("repeat"))


def mean_and_std(per_run: Sequence[Sequence[float]]) -> Tuple[List[float], List[float]]:
    """Per objective, the mean of the runs' values and their sample standard deviation.

    Example::

        >>> mean_and_std([[0.5, 10.0], [0.7, 10.0]])
        ([0.6, 10.0], [0.14142135623730948, 0.0])
    """
    columns = list(zip(*per_run))
    means = [statistics.fmean(column) for column in columns]
    stds = [statistics.stdev(column) if len(column) > 1 else 0.0 for column in columns]
    return means, stds
