"""Scripts and configs written for the flat 1.0 layout still import: each old module path is the
module that holds its contents now."""
import importlib

import pytest
from allennlp.training import TrainerCallback

import allennlp_optuna
from allennlp_optuna.core.moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_is_the_module_that_replaced_it(old: str) -> None:
    assert importlib.import_module(f"allennlp_optuna.{old}") is importlib.import_module(f"allennlp_optuna.{MOVED[old]}")


def test_the_guide_names_and_documented_paths_are_the_same_objects() -> None:
    from allennlp_optuna.executor import AllenNLPExecutor
    from allennlp_optuna.pruning import AllenNLPPruningCallback
    from allennlp_optuna.recovery import retried_trial_number
    from allennlp_optuna.report import write_report

    assert AllenNLPExecutor is allennlp_optuna.AllenNLPExecutor
    assert AllenNLPPruningCallback is allennlp_optuna.AllenNLPPruningCallback
    assert retried_trial_number is allennlp_optuna.retried_trial_number
    assert write_report is allennlp_optuna.write_report


def test_a_config_may_name_the_pruning_callback_by_its_registered_name_or_old_module_path() -> None:
    by_name = TrainerCallback.resolve_class_name("optuna_pruner")[0]
    by_path = TrainerCallback.resolve_class_name("allennlp_optuna.pruning.AllenNLPPruningCallback")[0]
    assert by_name is by_path is allennlp_optuna.AllenNLPPruningCallback
