"""The sampler and pruner a study uses: the ``--optuna-param-path`` file, and the defaults.

The file names classes of ``optuna.samplers`` / ``optuna.pruners`` with their keyword ``attributes``::

    {
      "sampler": {"type": "TPESampler", "attributes": {"seed": 42, "n_startup_trials": 5}},
      "pruner": {"type": "PatientPruner",
                 "attributes": {"patience": 1,
                                "wrapped_pruner": {"type": "MedianPruner", "attributes": {}}}}
    }

An attribute that is itself ``{"type": ..., "attributes": ...}`` naming a sampler or pruner is
built first, so wrapping pruners and samplers work.

Where the file names no sampler (or there is no file), the study gets :data:`DEFAULT_SAMPLER`;
where it names no pruner, :data:`DEFAULT_PRUNER`. They are what did best on
``benchmarks/time_to_quality.py`` (``docs/benchmarks.md``), so ``allennlp tune config hparams``
alone is the fast path; the study records which ran and the summary says so.
"""
import inspect
import json
import logging
import warnings
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional, Tuple

import optuna
from allennlp.common.checks import ConfigurationError

from allennlp_optuna.core.compat import (
    distribution_contains,
    sampler_constraint_arguments,
    sampler_grid,
    sampler_uses_constraints,
)
from allennlp_optuna.core.errors import read_json_file
from allennlp_optuna.core.typed_entries import is_typed_entry, keyword_arguments, unknown_attributes
from allennlp_optuna.study.constraints import Constraints, ConstraintViolations
from allennlp_optuna.study.search_space import SearchSpace

logger = logging.getLogger(__name__)


DEFAULT_SAMPLER: Dict[str, Any] = {"type": "TPESampler", "attributes": {}}
"""The sampler of a study whose ``--optuna-param-path`` file names none (see the module's docstring)."""
DEFAULT_PRUNER: Optional[Dict[str, Any]] = None
"""The pruner of a single-objective study whose ``--optuna-param-path`` file names none: none.
On ``benchmarks/time_to_quality.py`` no pruner reached the peers' best sooner than TPE without one."""


@dataclass
class OptunaSettings:
    """The sampler and pruner a study uses (``None`` means Optuna's default).

    ``defaults`` names those that are this plugin's defaults rather than the file's (``"sampler"``, ``"pruner"``).
    """

    sampler: Optional[optuna.samplers.BaseSampler] = None
    pruner: Optional[optuna.pruners.BasePruner] = None
    defaults: Tuple[str, ...] = ()

    def describe(self, multi_objective: bool = False) -> Dict[str, Any]:
        """What the study records about them (shown by the summary): class names and which were defaults.
        With several objectives the pruner is ``none``: Optuna prunes no multi-objective trial."""
        return {
            "sampler": class_name(self.sampler, "TPESampler"),
            "pruner": "none" if multi_objective else class_name(self.pruner, "none"),
            "defaults": list(self.defaults),
        }

    @classmethod
    def from_file(cls, path: Optional[str], sampler_arguments: Optional[Mapping[str, Any]] = None) -> "OptunaSettings":
        """Read the ``--optuna-param-path`` file; ``None`` gives Optuna's defaults.

        Args:
            path: the file, or ``None``.
            sampler_arguments: keyword arguments the sampler gets too, where its class takes them
                and the file does not set them (a ``constraints_func``, say).
        """
        if path is None:
            return cls()
        settings = read_json_file(path, "Optuna settings file")
        return cls.from_dict(settings, source=path, sampler_arguments=sampler_arguments)

    @classmethod
    def from_dict(
        cls, settings: Any, source: str = "Optuna settings", sampler_arguments: Optional[Mapping[str, Any]] = None
    ) -> "OptunaSettings":
        """Build from the parsed file content (keys ``sampler`` and ``pruner``); see :meth:`from_file`."""
        if not isinstance(settings, dict):
            raise ConfigurationError(f"{source}: expected an object with 'sampler' and/or 'pruner'")
        unknown = sorted(set(settings) - {"sampler", "pruner"})
        if unknown:
            raise ConfigurationError(f"{source}: unknown key(s) {unknown}; expected 'sampler' and/or 'pruner'")
        sampler = settings.get("sampler")
        pruner = settings.get("pruner")
        return cls(
            sampler=None if sampler is None else _build(sampler, "sampler", f"{source}: sampler", sampler_arguments),
            pruner=None if pruner is None else _build(pruner, "pruner", f"{source}: pruner"),
        )


_MODULES = {"sampler": (optuna.samplers, optuna.samplers.BaseSampler), "pruner": (optuna.pruners, optuna.pruners.BasePruner)}


def _public_classes(kind: str) -> List[str]:
    module, base = _MODULES[kind]
    return sorted(
        name
        for name in getattr(module, "__all__", dir(module))
        if inspect.isclass(getattr(module, name, None))
        and issubclass(getattr(module, name), base)
        and not name.startswith("Base")
    )


def _build(spec: Any, kind: str, where: str, defaults: Optional[Mapping[str, Any]] = None) -> Any:
    if not is_typed_entry(spec):
        raise ConfigurationError(f"{where}: expected {{\"type\": ..., \"attributes\": {{...}}}}, got {json.dumps(spec)}")
    name = spec["type"]
    if name not in _public_classes(kind):
        raise ConfigurationError(
            f"{where}: unknown {kind} {name!r}; use one of {', '.join(_public_classes(kind))}"
        )
    cls = getattr(_MODULES[kind][0], name)
    attributes = dict(spec.get("attributes") or {})
    for key, value in attributes.items():
        if is_typed_entry(value):
            nested_kind = "pruner" if value["type"] in _public_classes("pruner") else "sampler"
            attributes[key] = _build(value, nested_kind, f"{where}.{key}")
    accepted, _ = keyword_arguments(cls)
    unknown = unknown_attributes(attributes, accepted)
    if unknown:
        raise ConfigurationError(
            f"{where}: {name} has no argument(s) {unknown}; it takes {', '.join(accepted)}"
        )
    extra = {key: value for key, value in (defaults or {}).items() if key in accepted and key not in attributes}
    try:
        with warnings.catch_warnings():  # the user chose the class: an ExperimentalWarning says nothing they can act on
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return cls(**attributes, **extra)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{where}: {name}({json.dumps(spec.get('attributes') or {})}) failed: {error}")


def plan_sampler(optuna_param_path: Optional[str], multi_objective: bool, constraints: Constraints) -> OptunaSettings:
    """The sampler and pruner of the ``--optuna-param-path`` file, made to use the ``--constraint`` bounds.

    A sampler that models constraints is given them (Optuna 3 and 4 need a ``constraints_func``,
    see :func:`~allennlp_optuna.core.compat.sampler_constraint_arguments`); one that does not is warned
    about: infeasible trials are still recorded and never chosen as the best.
    """
    arguments = sampler_constraint_arguments(ConstraintViolations(tuple(constraints.texts))) if constraints else {}
    with warnings.catch_warnings():  # Optuna 3 and 4 call constraints_func experimental on every sampler made
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna_settings = OptunaSettings.from_file(optuna_param_path, arguments)
        optuna_settings = with_defaults(optuna_settings, multi_objective, arguments)
    if constraints and not sampler_uses_constraints(optuna_settings.sampler):
        logger.warning(
            "%s does not take constraints into account when it samples; trials that violate %s are still "
            "recorded as infeasible and never chosen as the best.",
            type(optuna_settings.sampler).__name__, ", ".join(constraints.texts),
        )
    return optuna_settings


def with_defaults(
    optuna_settings: OptunaSettings, multi_objective: bool, sampler_arguments: Optional[Dict[str, Any]] = None
) -> OptunaSettings:
    """Fill in :data:`DEFAULT_SAMPLER` and :data:`DEFAULT_PRUNER` where ``optuna_settings`` has none.

    A study with several objectives gets the default sampler too (multi-objective TPE; Optuna 3 and 4
    would otherwise take NSGA-II, whose first generation of 50 trials is random) and no pruner.
    ``sampler_arguments`` (Optuna 3 and 4's ``constraints_func``) make the default sampler use the
    study's constraints.
    """
    defaults: List[str] = []
    sampler, pruner = optuna_settings.sampler, optuna_settings.pruner
    if sampler is None:
        sampler = _build(DEFAULT_SAMPLER, "sampler", "allennlp-optuna's default sampler", sampler_arguments)
        defaults.append("sampler")
    if pruner is None:
        if DEFAULT_PRUNER is not None and not multi_objective:  # Optuna prunes no multi-objective trial
            pruner = _build(DEFAULT_PRUNER, "pruner", "allennlp-optuna's default pruner")
        defaults.append("pruner")
    return replace(optuna_settings, sampler=sampler, pruner=pruner, defaults=tuple(defaults))


def check_sampler_fits(sampler: Optional[optuna.samplers.BaseSampler], search_space: SearchSpace, source: str) -> None:
    """Refuse a sampler that cannot sample the search space, which Optuna would report in the first trial.

    A ``GridSampler``'s grid must give values for every hyperparameter, no other parameter (its
    grid points would train the same config), and values inside the search space. A
    ``BruteForceSampler`` tries every value: each float needs a ``step``.

    Args:
        sampler: the sampler of the ``--optuna-param-path`` file (``None``: Optuna's default).
        search_space: the hyperparameters each trial samples.
        source: the ``--optuna-param-path`` file, for the message.
    """
    distributions = {h.name: h.distribution for h in search_space.hyperparameters}
    if isinstance(sampler, optuna.samplers.BruteForceSampler):
        for name, distribution in distributions.items():
            if isinstance(distribution, optuna.distributions.FloatDistribution) and distribution.step is None:
                raise ConfigurationError(
                    f"{source}: sampler: BruteForceSampler tries every value, but {name} is a float without a step "
                    f"({distribution}); give it a step or choose another sampler"
                )
    if isinstance(sampler, optuna.samplers.GridSampler):
        _check_grid(sampler_grid(sampler), distributions, f"{source}: sampler: GridSampler's")


def _check_grid(grid: Mapping[str, List[Any]], distributions: Mapping[str, Any], where: str) -> None:
    missing = [name for name in distributions if name not in grid]
    if missing:
        raise ConfigurationError(
            f"{where} search_space has no values for {', '.join(missing)}; list every hyperparameter of the "
            "search space with its values"
        )
    extra = sorted(set(grid) - set(distributions))
    if extra:
        raise ConfigurationError(
            f"{where} search_space lists {', '.join(extra)}, which the search space does not sample (its grid "
            "points would train the same config); remove it"
        )
    for name, values in grid.items():
        outside = [value for value in values if not distribution_contains(distributions[name], value)]
        if outside:
            raise ConfigurationError(
                f"{where} value {name}={json.dumps(outside[0])} is outside the search space "
                f"({distributions[name]}); change the value or widen the range"
            )


def class_name(component: Any, default: str) -> str:
    """The class name of a sampler or pruner, or ``default`` when none was chosen."""
    return type(component).__name__ if component is not None else default
