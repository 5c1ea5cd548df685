"""allennlp_optuna: tune AllenNLP hyperparameters with Optuna.

Listing ``allennlp_optuna`` in ``.allennlp_plugins`` adds the ``allennlp tune``,
``allennlp best-params``, ``allennlp retrain`` and ``allennlp tune-report`` commands.
From Python, the guide's API is available with only the import changed::

    from allennlp_optuna import AllenNLPExecutor, AllenNLPPruningCallback, dump_best_config

This module is the package's public surface. The code is laid out by concern (see
``docs/architecture.md``): :mod:`~allennlp_optuna.core`, :mod:`~allennlp_optuna.study`,
:mod:`~allennlp_optuna.trial`, :mod:`~allennlp_optuna.parallel`, :mod:`~allennlp_optuna.faults`,
:mod:`~allennlp_optuna.output` and :mod:`~allennlp_optuna.commands`; the modules of the earlier
flat layout (``allennlp_optuna.executor``, ``allennlp_optuna.pruning``, ...) still import
(:mod:`allennlp_optuna.core.moved`).
"""
from allennlp_optuna.core import moved

moved.install()

from allennlp_optuna import commands  # noqa: E402 (registers the subcommands)
from allennlp_optuna.faults.recovery import retried_trial_number  # noqa: E402
from allennlp_optuna.output.report import write_report  # noqa: E402
from allennlp_optuna.study.settings import TuneSettings  # noqa: E402
from allennlp_optuna.study.search_space import SearchSpace  # noqa: E402
from allennlp_optuna.trial.callbacks.pruning import AllenNLPPruningCallback  # noqa: E402
from allennlp_optuna.trial.executor import AllenNLPExecutor  # noqa: E402
from allennlp_optuna.trial.retrain import dump_best_config, retrain  # noqa: E402
from allennlp_optuna.tuning import tune  # noqa: E402

__all__ = [
    "AllenNLPExecutor",
    "AllenNLPPruningCallback",
    "SearchSpace",
    "TuneSettings",
    "commands",
    "dump_best_config",
    "retrain",
    "retried_trial_number",
    "tune",
    "write_report",
]
