"""The search-space file: which hyperparameters a study samples, and from which ranges.

The file is a JSON (or Jsonnet) list, compatible with the older allennlp-optuna plugin::

    [
      {"type": "int", "attributes": {"name": "embedding_dim", "low": 32, "high": 256}},
      {"type": "float", "attributes": {"name": "lr", "low": 5e-3, "high": 5e-1, "log": true}},
      {"type": "categorical", "attributes": {"name": "activation", "choices": ["relu", "tanh"]}}
    ]

Each ``attributes`` object holds the keyword arguments of Optuna's ``Trial.suggest_<type>``.
The whole file is validated before any training, with Optuna's own distribution classes
checking the bounds, so a typo costs one error line instead of a crashed study.
"""
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence, Union

import _jsonnet
import optuna
from allennlp.common.checks import ConfigurationError
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from allennlp_optuna.core.errors import first_line
from allennlp_optuna.core.typed_entries import keyword_arguments, unknown_attributes, unknown_entry_keys

ParamValue = Union[None, bool, int, float, str]

# Each supported ``type`` and the ``Trial.suggest_*`` method whose keyword arguments it takes.
# The deprecated ``uniform``/``loguniform``/``discrete_uniform`` of Optuna 2 configs are
# translated to ``suggest_float`` so old search-space files keep working without warnings.
_SUGGEST_METHODS = {
    "int": optuna.trial.Trial.suggest_int,
    "float": optuna.trial.Trial.suggest_float,
    "categorical": optuna.trial.Trial.suggest_categorical,
    "uniform": optuna.trial.Trial.suggest_uniform,
    "loguniform": optuna.trial.Trial.suggest_loguniform,
    "discrete_uniform": optuna.trial.Trial.suggest_discrete_uniform,
}


@dataclass(frozen=True)
class Hyperparameter:
    """One entry of the search space: a name and the Optuna distribution it is drawn from."""

    name: str
    distribution: BaseDistribution

    def suggest(self, trial: optuna.Trial) -> ParamValue:
        """Draw this hyperparameter's value for ``trial`` through Optuna's public API."""
        d = self.distribution
        if isinstance(d, IntDistribution):
            return trial.suggest_int(self.name, d.low, d.high, step=d.step, log=d.log)
        if isinstance(d, FloatDistribution):
            return trial.suggest_float(self.name, d.low, d.high, step=d.step, log=d.log)
        assert isinstance(d, CategoricalDistribution)
        return trial.suggest_categorical(self.name, d.choices)

    def example_value(self) -> ParamValue:
        """A value that lies inside the distribution (its lower bound or first choice)."""
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return d.choices[0]
        return d.low  # type: ignore[attr-defined]


class SearchSpace:
    """An ordered, validated collection of :class:`Hyperparameter`.

    Args:
        hyperparameters: the entries, with unique names.

    Example::

        space = SearchSpace.from_file("hparams.json")
        params = space.suggest(trial)   # {"lr": 0.03, "embedding_dim": 96, ...}
    """

    def __init__(self, hyperparameters: Sequence[Hyperparameter]) -> None:
        self.hyperparameters = list(hyperparameters)

    @property
    def names(self) -> List[str]:
        return [h.name for h in self.hyperparameters]

    def suggest(self, trial: optuna.Trial) -> Dict[str, ParamValue]:
        """Sample every hyperparameter for ``trial``, in file order."""
        return {h.name: h.suggest(trial) for h in self.hyperparameters}

    def example_values(self) -> Dict[str, ParamValue]:
        """One in-range value per hyperparameter, used to check a config before training."""
        return {h.name: h.example_value() for h in self.hyperparameters}

    @classmethod
    def from_file(cls, path: str) -> "SearchSpace":
        """Read and validate a search-space file; raise ``ConfigurationError`` on any problem."""
        if not os.path.isfile(path):
            raise ConfigurationError(f"search-space file {path} does not exist")
        try:
            entries = json.loads(_jsonnet.evaluate_file(str(path)))
        except RuntimeError as error:
            raise ConfigurationError(f"cannot read search-space file {path}: {first_line(error)}")
        return cls.from_entries(entries, source=str(path))

    @classmethod
    def from_entries(cls, entries: Any, source: str = "search space") -> "SearchSpace":
        """Validate already-parsed entries (the list the file holds)."""
        if not isinstance(entries, list) or not entries:
            raise ConfigurationError(
                f"{source}: expected a non-empty JSON list of "
                '{"type": ..., "attributes": {...}} entries, got '
                f"{_describe(entries)}"
            )
        hyperparameters: List[Hyperparameter] = []
        seen = set()
        for index, entry in enumerate(entries):
            hyperparameter = _parse_entry(entry, f"{source}: entry {index}")
            if hyperparameter.name in seen:
                raise ConfigurationError(
                    f"{source}: entry {index}: duplicate name {hyperparameter.name!r}; "
                    "each hyperparameter may appear once"
                )
            seen.add(hyperparameter.name)
            hyperparameters.append(hyperparameter)
        return cls(hyperparameters)


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {json.dumps(value)[:60]}"


def _parse_entry(entry: Any, where: str) -> Hyperparameter:
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"{where}: expected an object with 'type' and 'attributes', got {_describe(entry)}")
    unknown_keys = unknown_entry_keys(entry)
    if unknown_keys:
        raise ConfigurationError(f"{where}: unknown key(s) {unknown_keys}; an entry has only 'type' and 'attributes'")
    kind = entry.get("type")
    if kind not in _SUGGEST_METHODS:
        raise ConfigurationError(
            f"{where}: unknown type {kind!r}; use one of {', '.join(_SUGGEST_METHODS)}"
        )
    attributes = entry.get("attributes")
    if not isinstance(attributes, Mapping):
        raise ConfigurationError(f"{where}: 'attributes' must be an object of suggest_{kind} keyword arguments")
    name = attributes.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{where}: missing 'name' in attributes (the std.extVar the config reads)")
    where = f"{where} ({name})"

    accepted, required = keyword_arguments(_SUGGEST_METHODS[kind])
    unknown = unknown_attributes(attributes, accepted)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown attribute(s) {unknown} for type {kind!r}; "
            f"suggest_{kind} takes {', '.join(accepted)}"
        )
    missing = [name for name in required if name not in attributes]
    if missing:
        raise ConfigurationError(f"{where}: missing attribute(s) {missing} for type {kind!r}")

    try:
        distribution = _distribution(kind, dict(attributes))
    except (ValueError, TypeError) as error:
        raise ConfigurationError(f"{where}: {error}")
    return Hyperparameter(name=name, distribution=distribution)


def _distribution(kind: str, a: Dict[str, Any]) -> BaseDistribution:
    """Build the Optuna distribution; its constructor validates bounds, step and log."""
    if kind == "categorical":
        choices = a["choices"]
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"'choices' must be a non-empty list, got {json.dumps(choices)}")
        for choice in choices:
            if not (choice is None or isinstance(choice, (bool, int, float, str))):
                raise ValueError(f"choice {json.dumps(choice)} is not a string, number, bool or null")
        return CategoricalDistribution(choices)
    for bound in ("low", "high"):
        if isinstance(a[bound], bool) or not isinstance(a[bound], (int, float)):
            raise ValueError(f"{bound!r} must be a number, got {json.dumps(a[bound])}")
    if a["low"] > a["high"]:
        raise ValueError(f"'low' ({a['low']}) must not exceed 'high' ({a['high']})")
    if (a.get("log") or kind == "loguniform") and a["low"] <= 0:
        raise ValueError(f"'low' must be above 0 when sampling on a log scale, got {a['low']}")
    if kind == "int":
        for key in ("low", "high", "step"):
            if key in a and not (isinstance(a[key], int) and not isinstance(a[key], bool)):
                raise ValueError(f"{key!r} of an int hyperparameter must be an integer, got {json.dumps(a[key])}")
        return IntDistribution(a["low"], a["high"], log=a.get("log", False), step=a.get("step", 1))
    if kind == "float":
        return FloatDistribution(a["low"], a["high"], log=a.get("log", False), step=a.get("step"))
    if kind == "uniform":
        return FloatDistribution(a["low"], a["high"])
    if kind == "loguniform":
        return FloatDistribution(a["low"], a["high"], log=True)
    return FloatDistribution(a["low"], a["high"], step=a["q"])
