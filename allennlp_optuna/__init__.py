"""allennlp_optuna: tune AllenNLP hyperparameters with Optuna.

Listing ``allennlp_optuna`` in ``.allennlp_plugins`` adds the ``allennlp tune``,
``allennlp best-params`` and ``allennlp retrain`` commands.
From Python, the guide's API is available with only the import changed::

    from allennlp_optuna import AllenNLPExecutor, AllenNLPPruningCallback, dump_best_config
"""
from allennlp_optuna import commands
from allennlp_optuna.best import dump_best_config
from allennlp_optuna.executor import AllenNLPExecutor
from allennlp_optuna.pruning import AllenNLPPruningCallback
from allennlp_optuna.retraining import retrain
from allennlp_optuna.search_space import SearchSpace
from allennlp_optuna.tuning import tune

__all__ = [
    "AllenNLPExecutor",
    "AllenNLPPruningCallback",
    "SearchSpace",
    "commands",
    "dump_best_config",
    "retrain",
    "tune",
]
