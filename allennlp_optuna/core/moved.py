"""Module paths of the 1.0 layout, before the package was split by concern, still importable.

Scripts and configs written for the flat layout name modules such as
``allennlp_optuna.executor`` or ``allennlp_optuna.pruning.AllenNLPPruningCallback`` (an AllenNLP
config may give a class by its module path as ``type``). :class:`MovedModules`, installed on
``sys.meta_path`` when :mod:`allennlp_optuna` is imported, answers each old path with the module
that now holds its contents (the same module object, so classes and functions are the same
objects); nothing is kept as a copy or a re-exporting module. New code imports the new paths.

``allennlp_optuna.study`` is now the package of the study's concerns; what the flat layout's
``study`` module held is in :mod:`allennlp_optuna.study.storage` (storages, loading studies),
:mod:`allennlp_optuna.study.samplers` (``OptunaSettings``) and :mod:`allennlp_optuna.study.setup`
(``create_or_join_study``).
"""
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from typing import Dict, Optional, Sequence

PACKAGE = "allennlp_optuna"

MOVED: Dict[str, str] = {
    "best": "output.best_params",
    "budget": "parallel.budget",
    "cleanup": "faults.cleanup",
    "compat": "core.compat",
    "config": "study.config",
    "console": "output.console",
    "constraints": "study.constraints",
    "data_reuse": "trial.data_reuse",
    "enqueue": "study.enqueue",
    "errors": "core.errors",
    "executor": "trial.executor",
    "expected_performance": "output.expected_performance",
    "identity": "faults.identity",
    "memory": "trial.memory",
    "metric_check": "trial.callbacks.metric_check",
    "objectives": "study.objectives",
    "parameter_count": "trial.callbacks.parameter_count",
    "preflight": "study.preflight",
    "pruning": "trial.callbacks.pruning",
    "reconnect": "faults.reconnect",
    "recovery": "faults.recovery",
    "redaction": "core.redaction",
    "repeats": "study.repeats",
    "report": "output.report",
    "resume": "faults.resume",
    "retraining": "trial.retrain",
    "search_space": "study.search_space",
    "settings": "study.settings",
    "start_method": "parallel.start_method",
    "summary": "output.summary",
    "trial_attrs": "core.trial_attrs",
    "typed_entries": "core.typed_entries",
    "workers": "parallel.workers",
}
"""Old module name (under ``allennlp_optuna``) → where its contents live now."""


class _Alias(importlib.abc.Loader):
    """Loads an old path as the module at its new path."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: types.ModuleType) -> None:
        """The module is the new one, already executed."""


class MovedModules(importlib.abc.MetaPathFinder):
    """Finds ``allennlp_optuna.OLD`` (one of :data:`MOVED`) as the module that replaced it."""

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]], target: Optional[types.ModuleType] = None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        package, _, name = fullname.rpartition(".")
        if package != PACKAGE or name not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(f"{PACKAGE}.{MOVED[name]}"))


def install() -> None:
    """Put :class:`MovedModules` on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())
