"""The plugin's AllenNLP subcommands; importing this package registers them."""
from allennlp_optuna.commands.tune import Tune
from allennlp_optuna.commands.tune_report import TuneReport

__all__ = ["Tune", "TuneReport"]
