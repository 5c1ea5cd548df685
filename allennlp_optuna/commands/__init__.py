"""The plugin's AllenNLP subcommands; importing this package registers them."""
from allennlp_optuna.commands.best_params import BestParams
from allennlp_optuna.commands.retrain import Retrain
from allennlp_optuna.commands.tune import Tune
from allennlp_optuna.commands.tune_report import TuneReport

__all__ = ["BestParams", "Retrain", "Tune", "TuneReport"]
