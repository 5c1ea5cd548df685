"""allennlp_optuna: tune AllenNLP hyperparameters with Optuna.

Listing ``allennlp_optuna`` in ``.allennlp_plugins`` adds the ``allennlp tune`` command.
From Python, the guide's API is available with only the import changed::

    from allennlp_optuna import AllenNLPExecutor, AllenNLPPruningCallback
"""
from allennlp_optuna import commands
from allennlp_optuna.executor import AllenNLPExecutor
from allennlp_optuna.pruning import AllenNLPPruningCallback
from allennlp_optuna.search_space import SearchSpace
from allennlp_optuna.tuning import tune

__all__ = ["AllenNLPExecutor", "AllenNLPPruningCallback", "SearchSpace", "commands", "tune"]
