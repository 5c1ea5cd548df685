"""
The `retrain` subcommand trains a config with the values of a tuned trial (the best by default).

    allennlp retrain CONFIG.jsonnet -s DIR [--study-name NAME] [--storage URL] [--trial N]
                     [-r | -f] [-o OVERRIDES] [--node-rank R] [--dry-run] [--file-friendly-logging]

It takes `allennlp train`'s flags; `optuna_pruner` callbacks are removed from the config.
With the config's seeds on CPU, retraining trial N reproduces trial N's metrics.
"""
import argparse
import sys
from typing import TYPE_CHECKING, Any, Dict, Sequence

from allennlp.commands.subcommand import Subcommand

from allennlp_optuna.commands.options import (
    add_include_package_argument,
    add_command_parser,
    add_file_friendly_logging_argument,
    add_overrides_argument,
    add_serialization_dir_argument,
    add_study_arguments,
)
from allennlp_optuna.errors import exit_on_configuration_error

if TYPE_CHECKING:  # importing Optuna is left to the command's run
    import optuna
    from optuna.trial import FrozenTrial


@Subcommand.register("retrain")
class Retrain(Subcommand):
    requires_plugins = False  # its own --include-package (add_include_package_argument) reports a bad package

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Train a model with the hyperparameters of the best (or a chosen) trial of a study."
        subparser = add_command_parser(parser, self.name, description)
        subparser.add_argument("param_path", type=str, help="the Jsonnet config the study's trials trained with")
        add_serialization_dir_argument(subparser, "directory in which to save the model and its logs")
        add_study_arguments(subparser, "name of the study (default: the storage's only study)")
        subparser.add_argument(
            "--trial", type=int, default=None, help="number of the trial to retrain (default: the best trial)"
        )
        subparser.add_argument(
            "-r", "--recover", action="store_true", help="recover training from the state in serialization_dir"
        )
        subparser.add_argument(
            "-f", "--force", action="store_true", help="overwrite the output directory if it exists"
        )
        add_overrides_argument(
            subparser, "a JSON structure used to override the configuration, as in allennlp train (use tune's)"
        )
        subparser.add_argument("--node-rank", type=int, default=0, help="rank of this node in the distributed setup")
        subparser.add_argument(
            "--dry-run",
            action="store_true",
            help="do not train a model, but create a vocabulary, show dataset statistics and other training "
            "information",
        )
        subparser.add_argument(
            "--seed-index",
            type=int,
            default=None,
            help="of a study tuned with --seeds or --repeat: which run of the trial to reproduce, from 0 "
            "(default: the first)",
        )
        add_file_friendly_logging_argument(subparser)
        add_include_package_argument(subparser)
        subparser.set_defaults(func=retrain_from_args)
        return subparser


@exit_on_configuration_error("retrain")
def retrain_from_args(args: argparse.Namespace) -> None:
    """Run :func:`allennlp_optuna.retraining.retrain` with the command line's arguments."""
    from allennlp_optuna.objectives import split_keys
    from allennlp_optuna.retraining import retrain_trial, trial_config, trial_to_retrain
    from allennlp_optuna.study import load_existing_study
    from allennlp_optuna.trial_attrs import METRIC_ATTR, RUNS_ATTR

    study = load_existing_study(args.study_name, args.storage)
    trial = trial_to_retrain(study, args.trial)
    _, run = trial_config(args.param_path, study, trial, args.overrides, args.seed_index)
    if run is not None:
        runs = trial.user_attrs.get(RUNS_ATTR) or []
        print(
            f"Reproducing run {run.name} (--seed-index {run.index}) of trial {trial.number}'s {len(runs) or 'several'} "
            "runs; the trial's value is their mean",
            file=sys.stderr,
            flush=True,
        )
    metrics = retrain_trial(
        args.param_path,
        args.serialization_dir,
        study,
        trial,
        recover=args.recover,
        force=args.force,
        overrides=args.overrides,
        node_rank=args.node_rank,
        include_package=args.include_package,
        dry_run=args.dry_run,
        file_friendly_logging=args.file_friendly_logging,
        run_index=args.seed_index,
    )
    keys = split_keys(study.user_attrs.get(METRIC_ATTR) or "")
    runs = {record["run"]: record["values"] for record in trial.user_attrs.get(RUNS_ATTR) or []}
    for i, key in enumerate(keys):
        if key not in metrics or trial.values is None or i >= len(trial.values):
            continue
        tuned = f"trial {trial.number}: {trial.values[i]}"
        if run is not None and run.name in runs:
            tuned = f"run {run.name} of trial {trial.number}: {runs[run.name][i]}, the trial's mean: {trial.values[i]}"
        print(f"{key} = {metrics[key]} ({tuned})", flush=True)
    print_constraint_values(study, trial, metrics, printed=keys)


def print_constraint_values(
    study: "optuna.Study", trial: "FrozenTrial", metrics: Dict[str, Any], printed: Sequence[str] = ()
) -> None:
    """One line per ``--constraint`` key of the study (but those ``printed`` already): the retrained
    value, the trial's and the bounds."""
    from allennlp_optuna.constraints import Constraints

    constraints = Constraints.of_study(study)
    tuned = constraints.trial_values(trial) or {}
    for key in constraints.keys:
        if key in metrics and key in tuned and key not in printed:
            bounds = ", ".join(c.text for c in constraints.items if c.key == key)
            print(f"{key} = {metrics[key]} (trial {trial.number}: {tuned[key]}; constraint {bounds})", flush=True)
