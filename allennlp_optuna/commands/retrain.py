"""
The `retrain` subcommand trains a config with the values of a tuned trial (the best by default).

    allennlp retrain CONFIG.jsonnet -s DIR [--study-name NAME] [--storage URL] [--trial N]
                     [-r | -f] [-o OVERRIDES] [--node-rank R] [--dry-run] [--file-friendly-logging]

It takes `allennlp train`'s flags; `optuna_pruner` callbacks are removed from the config.
With the config's seeds on CPU, retraining trial N reproduces trial N's metrics.
"""
import argparse
import sys
from typing import Any, Dict, Optional, Sequence

from allennlp.commands.subcommand import Subcommand
from optuna.trial import FrozenTrial

from allennlp_optuna.commands import options
from allennlp_optuna.core.errors import exit_on_configuration_error
from allennlp_optuna.core.trial_attrs import METRIC_ATTR, RUNS_ATTR
from allennlp_optuna.study.record import StoredStudy
from allennlp_optuna.study.repeats import Run


@Subcommand.register("retrain")
class Retrain(options.PluginCommand):
    description = "Train a model with the hyperparameters of the best (or a chosen) trial of a study."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("param_path", type=str, help="the Jsonnet config the study's trials trained with")
        options.add_serialization_dir_argument(parser, "directory in which to save the model and its logs")
        options.add_study_arguments(parser, "name of the study (default: the storage's only study)")
        parser.add_argument(
            "--trial", type=int, default=None, help="number of the trial to retrain (default: the best trial)"
        )
        parser.add_argument(
            "-r", "--recover", action="store_true", help="recover training from the state in serialization_dir"
        )
        parser.add_argument("-f", "--force", action="store_true", help="overwrite the output directory if it exists")
        options.add_overrides_argument(
            parser, "a JSON structure used to override the configuration, as in allennlp train (use tune's)"
        )
        parser.add_argument("--node-rank", type=int, default=0, help="rank of this node in the distributed setup")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="do not train a model, but create a vocabulary, show dataset statistics and other training "
            "information",
        )
        parser.add_argument(
            "--seed-index",
            type=int,
            default=None,
            help="of a study tuned with --seeds or --repeat: which run of the trial to reproduce, from 0 "
            "(default: the first)",
        )
        options.add_file_friendly_logging_argument(parser)
        parser.add_argument(
            "--verbose",
            action="store_true",
            help="stream AllenNLP's training log to the console as allennlp train does (it always goes to DIR/out.log)",
        )

    @exit_on_configuration_error("retrain")
    def run(self, args: argparse.Namespace) -> None:
        """Run :func:`allennlp_optuna.trial.retrain.retrain_trial` with the command line's arguments."""
        from allennlp_optuna.trial.choose import chosen_trial
        from allennlp_optuna.study.storage import read_study
        from allennlp_optuna.output.epochs import retrain_console
        from allennlp_optuna.trial.retrain import retrain_trial, trial_config

        stored = read_study(args.study_name, args.storage)
        trial = chosen_trial(stored, args.trial)
        config, run = trial_config(args.param_path, stored, trial, args.overrides, args.seed_index)
        if run is not None:
            announce_run(trial, run)
        with retrain_console(stored, trial, args.serialization_dir, config, args.verbose):
            metrics = retrain_trial(
                args.param_path, args.serialization_dir, stored, trial, recover=args.recover, force=args.force,
                overrides=args.overrides, node_rank=args.node_rank, include_package=args.include_package,
                dry_run=args.dry_run, file_friendly_logging=args.file_friendly_logging, run_index=args.seed_index,
            )
        print_comparison(stored, trial, run, metrics)


def announce_run(trial: FrozenTrial, run: Run) -> None:
    """Say on stderr which run of a repeated trial is reproduced."""
    recorded = trial.user_attrs.get(RUNS_ATTR) or []
    print(
        f"Reproducing run {run.name} (--seed-index {run.index}) of trial {trial.number}'s "
        f"{len(recorded) or 'several'} runs; the trial's value is their mean",
        file=sys.stderr,
        flush=True,
    )


def print_comparison(stored: StoredStudy, trial: FrozenTrial, run: Optional[Run], metrics: Dict[str, Any]) -> None:
    """One line per objective (and constrained key): the retrained value beside the trial's."""
    keys = stored.objectives.keys if METRIC_ATTR in stored.study.user_attrs else ()
    run_values = {record["run"]: record["values"] for record in trial.user_attrs.get(RUNS_ATTR) or []}
    for i, key in enumerate(keys):
        if key not in metrics or trial.values is None or i >= len(trial.values):
            continue
        tuned = f"trial {trial.number}: {trial.values[i]}"
        if run is not None and run.name in run_values:
            tuned = f"run {run.name} of trial {trial.number}: {run_values[run.name][i]}, the trial's mean: {trial.values[i]}"
        print(f"{key} = {metrics[key]} ({tuned})", flush=True)
    print_constraint_values(stored, trial, metrics, printed=keys)


def print_constraint_values(
    stored: StoredStudy, trial: FrozenTrial, metrics: Dict[str, Any], printed: Sequence[str] = ()
) -> None:
    """One line per ``--constraint`` key of the study (but those ``printed`` already): the retrained
    value, the trial's and the bounds."""
    constraints = stored.constraints
    tuned = constraints.trial_values(trial) or {}
    for key in constraints.keys:
        if key in metrics and key in tuned and key not in printed:
            bounds = ", ".join(c.text for c in constraints.items if c.key == key)
            print(f"{key} = {metrics[key]} (trial {trial.number}: {tuned[key]}; constraint {bounds})", flush=True)
