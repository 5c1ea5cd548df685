"""Evaluating a Jsonnet training config with hyperparameter values as ``std.extVar`` values.

Sampled values reach the config exactly as ``allennlp train`` would receive them from the
environment: as strings (``"0.05"``, ``"128"``, ``"relu"``, ``"true"``), which the config turns
into numbers with ``std.parseInt`` / ``std.parseJson``. Environment variables stay visible;
sampled values win. Evaluation goes through AllenNLP's own ``Params.from_file``.
"""
import json
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import _jsonnet
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError

from allennlp_optuna.core.compat import environment_variables
from allennlp_optuna.core.errors import first_line
from allennlp_optuna.study.search_space import ParamValue, SearchSpace

logger = logging.getLogger(__name__)

PRUNING_CALLBACK_TYPE = "optuna_pruner"
METRIC_CHECK_CALLBACK_TYPE = "optuna_metric_check"
"""The callback ``tune`` adds to check ``--metrics`` after the first epoch (:mod:`allennlp_optuna.trial.callbacks.metric_check`)."""
_UNDEFINED_EXT_VAR = re.compile(r"undefined external variable: (\S+)")
_PLACEHOLDER = "0"


def ext_var_value(value: ParamValue) -> str:
    """The string a config's ``std.extVar`` sees for a hyperparameter value.

    Strings pass through unchanged; numbers, booleans and ``None`` are written as JSON
    (``0.05``, ``128``, ``true``, ``null``) so that ``std.parseJson`` reads them back.
    """
    return value if isinstance(value, str) else json.dumps(value)


def ext_vars_for(values: Mapping[str, ParamValue]) -> Dict[str, str]:
    """Ext vars for a set of hyperparameter values (see :func:`ext_var_value`)."""
    return {name: ext_var_value(value) for name, value in values.items()}


def load_params(
    config_file: str, values: Mapping[str, ParamValue], overrides: Union[str, Dict[str, Any]] = ""
) -> Params:
    """Evaluate ``config_file`` with ``values`` as ext vars and ``overrides`` applied.

    Args:
        config_file: path to the Jsonnet (or JSON) training config.
        values: hyperparameter values, e.g. ``trial.params``.
        overrides: a JSON string or dict, as ``allennlp train -o`` takes it.
    """
    check_overrides(overrides)
    if not os.path.isfile(config_file):
        raise ConfigurationError(f"config file {config_file} does not exist")
    try:
        params = Params.from_file(config_file, params_overrides=overrides, ext_vars=ext_vars_for(values))
    except RuntimeError as error:  # _jsonnet reports evaluation errors as RuntimeError
        raise ConfigurationError(f"cannot evaluate {config_file}: {first_line(error)}")
    except (AttributeError, TypeError):  # AllenNLP applies overrides to an object only
        check_is_object(config_file, _jsonnet.evaluate_file(str(config_file), ext_vars=ext_vars_for(values)))
        raise
    check_is_object(config_file, json.dumps(params.params))
    return params


def check_is_object(config_file: str, evaluated: str) -> None:
    """Refuse a config that evaluates to something other than a JSON object (a list, a number)."""
    value = json.loads(evaluated)
    if not isinstance(value, dict):
        raise ConfigurationError(
            f"{config_file} evaluates to a JSON {type(value).__name__}, not an object of settings "
            "(dataset_reader, model, trainer, ...)"
        )


def check_overrides(overrides: Union[str, Dict[str, Any]]) -> None:
    """Refuse ``-o/--overrides`` that is not a JSON (or Jsonnet) object, blaming the flag, not the config."""
    if isinstance(overrides, dict) or not overrides.strip():
        return
    try:
        value = json.loads(_jsonnet.evaluate_snippet("overrides", overrides))
    except RuntimeError as error:
        raise ConfigurationError(f"-o/--overrides is not valid JSON: {first_line(error)}")
    if not isinstance(value, dict):
        raise ConfigurationError(f"-o/--overrides must be a JSON object, got {type(value).__name__} {overrides}")


def _evaluate(config_file: str, ext_vars: Dict[str, str]) -> Optional[str]:
    """Evaluate with exactly these ext vars; return the error text, or ``None`` on success."""
    try:
        _jsonnet.evaluate_file(str(config_file), ext_vars=ext_vars)
    except RuntimeError as error:
        return str(error)
    return None


def check_config(
    config_file: str, search_space: SearchSpace, extra_ext_vars: Optional[Mapping[str, str]] = None
) -> List[str]:
    """Check, before any training, that the config and the search space fit together.

    The config is evaluated with one in-range value per hyperparameter plus the environment.
    An ``std.extVar`` that neither provides is an error naming every such variable; a
    hyperparameter the config never reads is returned (and logged) as a warning.

    Args:
        config_file: the Jsonnet config.
        search_space: the hyperparameters each trial samples.
        extra_ext_vars: other ext vars every trial gives (``--repeat``'s variable).

    Returns:
        The names of search-space entries the config never reads.
    """
    if not os.path.isfile(config_file):
        raise ConfigurationError(f"config file {config_file} does not exist")
    sampled = example_ext_vars(search_space, extra_ext_vars)
    ext_vars = {**environment_variables(), **sampled}

    missing, error = _undefined_ext_vars(config_file, ext_vars)
    if missing:
        raise ConfigurationError(
            f"{config_file} reads std.extVar {', '.join(repr(m) for m in missing)}, which neither "
            "the search space nor the environment provides; add it to the search-space file "
            "or export it"
        )
    if error is not None:
        raise ConfigurationError(
            f"cannot evaluate {config_file} with {json.dumps(sampled)}: {first_line(RuntimeError(error))}"
        )
    check_is_object(config_file, _jsonnet.evaluate_file(str(config_file), ext_vars=ext_vars))

    unused = unread_ext_vars(config_file, sampled, search_space.names)
    for name in unused:
        logger.warning(
            "Search-space hyperparameter %r is never read by %s (no std.extVar(%r)); "
            "sampling it has no effect on training.",
            name,
            config_file,
            name,
        )
    return unused


def _undefined_ext_vars(config_file: str, ext_vars: Dict[str, str]) -> Tuple[List[str], Optional[str]]:
    """The ``std.extVar`` names the config reads that ``ext_vars`` lacks, and the error left once they are given.

    Jsonnet reports one undefined variable at a time: each is given a placeholder and the config
    evaluated again, until another error or none.
    """
    missing: List[str] = []
    error = _evaluate(config_file, ext_vars)
    while error is not None:
        match = _UNDEFINED_EXT_VAR.search(error)
        if match is None or match.group(1) in missing:
            break
        missing.append(match.group(1))
        error = _evaluate(config_file, {**ext_vars, **{name: _PLACEHOLDER for name in missing}})
    return missing, error


def example_ext_vars(search_space: SearchSpace, extra_ext_vars: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The ext vars a config is checked with: one in-range value per hyperparameter, and ``extra_ext_vars``."""
    return {**ext_vars_for(search_space.example_values()), **(extra_ext_vars or {})}


def unread_ext_vars(config_file: str, ext_vars: Mapping[str, str], names: Sequence[str]) -> List[str]:
    """The ``names`` the config never reads when it is evaluated with the environment and ``ext_vars``:
    it still evaluates without them."""
    ext_vars = {**environment_variables(), **ext_vars}

    def without(name: str) -> Optional[str]:
        return _evaluate(config_file, {k: v for k, v in ext_vars.items() if k != name})

    # _jsonnet releases the GIL, so the evaluations run side by side on the machine's cores.
    with ThreadPoolExecutor(max_workers=max(1, min(len(names), os.cpu_count() or 1))) as pool:
        errors = list(pool.map(without, names))
    return [name for name, error in zip(names, errors) if error is None]


def is_pruning_entry(callback: Any) -> bool:
    """Whether a ``trainer.callbacks`` entry is ``{type: 'optuna_pruner', ...}``."""
    return isinstance(callback, dict) and callback.get("type") == PRUNING_CALLBACK_TYPE


def is_metric_check_entry(callback: Any) -> bool:
    """Whether a ``trainer.callbacks`` entry is ``{type: 'optuna_metric_check', ...}``."""
    return isinstance(callback, dict) and callback.get("type") == METRIC_CHECK_CALLBACK_TYPE


def remove_pruning_callbacks(config: Dict[str, Any]) -> Dict[str, Any]:
    """``config`` without the callbacks ``tune`` adds to ``trainer.callbacks``: ``optuna_pruner``
    entries (they need a live trial) and the ``optuna_metric_check``.

    ``config`` itself is left as it is (``Params.as_dict(quiet=True)`` hands out the live dict)."""
    trainer = config.get("trainer")
    if not (isinstance(trainer, dict) and isinstance(trainer.get("callbacks"), list)):
        return config
    kept = [c for c in trainer["callbacks"] if not is_pruning_entry(c) and not is_metric_check_entry(c)]
    trainer = {key: value for key, value in trainer.items() if key != "callbacks"}
    return {**config, "trainer": {**trainer, "callbacks": kept} if kept else trainer}


def resolved_config(
    config_file: str, values: Mapping[str, ParamValue], overrides: Union[str, Dict[str, Any]] = ""
) -> Dict[str, Any]:
    """The plain-JSON config for ``values``: ext vars resolved, pruning callbacks removed."""
    return remove_pruning_callbacks(load_params(config_file, values, overrides).as_dict(quiet=True))


def write_config(config: Dict[str, Any], path: Union[str, "os.PathLike[str]"]) -> None:
    """Write a config as indented JSON that ``allennlp train`` accepts directly."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump(config, file, indent=2)
        file.write("\n")

