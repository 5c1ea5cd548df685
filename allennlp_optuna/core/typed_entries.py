"""Reading ``{"type": ..., "attributes": {...}}`` entries, the shape of both input files.

The search-space file lists entries whose ``attributes`` are the keyword arguments of Optuna's
``Trial.suggest_<type>``; the ``--optuna-param-path`` file names a sampler and a pruner whose
``attributes`` are the keyword arguments of an ``optuna.samplers`` or ``optuna.pruners`` class.
Both are read with the functions here; the messages stay with each file's reader, which knows
what the user meant to write.
"""
import inspect
from typing import Any, Callable, List, Mapping, Tuple

ENTRY_KEYS = ("type", "attributes")


def is_typed_entry(value: Any) -> bool:
    """Whether ``value`` is an object with a string ``type`` and no key besides ``type`` and ``attributes``."""
    return isinstance(value, Mapping) and isinstance(value.get("type"), str) and set(value) <= set(ENTRY_KEYS)


def unknown_entry_keys(entry: Mapping[str, Any]) -> List[str]:
    """The keys of ``entry`` other than ``type`` and ``attributes``, sorted."""
    return sorted(set(entry) - set(ENTRY_KEYS))


def keyword_arguments(function: Callable[..., Any]) -> Tuple[List[str], List[str]]:
    """The argument names ``function`` (or a class) accepts, and those it requires, ``self`` left out."""
    parameters = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
    return [p.name for p in parameters], [p.name for p in parameters if p.default is inspect.Parameter.empty]


def unknown_attributes(attributes: Mapping[str, Any], accepted: List[str]) -> List[str]:
    """The ``attributes`` that are none of the ``accepted`` argument names, sorted."""
    return sorted(set(attributes) - set(accepted))
