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
"""
import inspect
import json
import logging
import warnings
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional

import optuna
from allennlp.common.checks import ConfigurationError

from allennlp_optuna.core.compat import sampler_constraint_arguments, sampler_uses_constraints
from allennlp_optuna.core.errors import read_json_file
from allennlp_optuna.core.typed_entries import is_typed_entry, keyword_arguments, unknown_attributes
from allennlp_optuna.study.constraints import Constraints, ConstraintViolations

logger = logging.getLogger(__name__)


@dataclass
class OptunaSettings:
    """The sampler and pruner a study uses (``None`` means Optuna's default)."""

    sampler: Optional[optuna.samplers.BaseSampler] = None
    pruner: Optional[optuna.pruners.BasePruner] = None

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
        optuna_settings = with_default_sampler(optuna_settings, multi_objective, arguments)
    if constraints and not sampler_uses_constraints(optuna_settings.sampler):
        logger.warning(
            "%s does not take constraints into account when it samples; trials that violate %s are still "
            "recorded as infeasible and never chosen as the best.",
            type(optuna_settings.sampler).__name__, ", ".join(constraints.texts),
        )
    return optuna_settings


def with_default_sampler(
    optuna_settings: OptunaSettings, multi_objective: bool, sampler_arguments: Optional[Dict[str, Any]] = None
) -> OptunaSettings:
    """A study without a named sampler gets ``TPESampler`` when it has several objectives or constraints.

    Optuna 3 and 4 default to ``NSGAIISampler`` for several objectives, whose first generation
    (50 trials) is random sampling: most AllenNLP studies end before it. TPE handles several
    objectives (Optuna's multi-objective TPE) and models from its 10th trial on; Optuna 5 made it
    the default, and this gives every supported Optuna the same. ``sampler_arguments`` (Optuna 3
    and 4's ``constraints_func``) make Optuna's default TPE use the study's constraints.
    """
    if optuna_settings.sampler is None and (multi_objective or sampler_arguments):
        return replace(optuna_settings, sampler=optuna.samplers.TPESampler(**(sampler_arguments or {})))
    return optuna_settings


def class_name(component: Any, default: str) -> str:
    """The class name of a sampler or pruner, or ``default`` when none was chosen."""
    return type(component).__name__ if component is not None else default
