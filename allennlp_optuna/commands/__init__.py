"""The plugin's AllenNLP subcommands; importing this package registers them."""
from allennlp_optuna.commands.tune import Tune

__all__ = ["Tune"]
