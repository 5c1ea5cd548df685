"""`allennlp tune`'s options become typed settings once, when they are read."""
import argparse
import json

import pytest

from allennlp_optuna.commands.tune import Tune
from allennlp_optuna.study.settings import TuneSettings, option_names
from allennlp_optuna.study.constraints import Constraints
from allennlp_optuna.study.objectives import Objectives
from allennlp_optuna.study.repeats import RepeatPlan


def tune_parser() -> argparse.ArgumentParser:
    subparsers = argparse.ArgumentParser().add_subparsers()
    return Tune().add_subparser(subparsers)


def test_text_options_become_typed_values_when_they_are_read() -> None:
    args = tune_parser().parse_args([
        "config/imdb.jsonnet", "hparams.json", "-s", "result", "--metrics", "best_validation_accuracy,num_parameters",
        "--constraint", "num_parameters<=1e6", "--seeds", "2", "--repeat", "fold=0,1", "--include-package", "json",
    ])

    settings = TuneSettings.from_args(args)

    assert settings.study_name == "imdb"
    assert settings.training.objectives == Objectives(("best_validation_accuracy", "num_parameters"),
                                                      ("maximize", "minimize"))
    assert settings.training.constraints == Constraints.parse(["num_parameters<=1000000"])
    assert settings.training.repeats == RepeatPlan(seeds=2, variable="fold", values=("0", "1"))
    assert settings.training.include_package == ("json",)


def test_every_option_of_the_command_line_reaches_the_settings() -> None:
    dests = {action.dest for action in tune_parser()._actions} - {"help", "func", "param_path", "hparam_path",
                                                                  "serialization_dir"}
    assert dests <= set(option_names())


def test_an_option_tune_does_not_have_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="^unknown option\\(s\\) of tune: n_trails; did you mean n_trials\\?$"):
        TuneSettings.parse("c.jsonnet", "h.json", "result", n_trails=3)


def test_settings_travel_as_options_and_come_back_equal() -> None:
    settings = TuneSettings.parse(
        "config/x.jsonnet", "h.json", "result", metrics="best_validation_accuracy,num_parameters",
        constraints=["num_parameters<=1e6"], seeds=2, repeat="fold=0,1", overrides={"trainer.num_epochs": 1},
        storage="study.log", n_trials=3, include_package=["json"], launcher="slurm", sbatch="--time=10",
    )

    options = json.loads(json.dumps(settings.options()))  # as a SLURM job's tasks read them

    assert TuneSettings.parse("config/x.jsonnet", "h.json", "result", **options) == settings
