"""
The `tune` subcommand searches hyperparameters of an AllenNLP config with Optuna.

    allennlp tune CONFIG.jsonnet SEARCH_SPACE.json --serialization-dir DIR [options]

The config reads each hyperparameter with `std.extVar('name')`; the search-space file says
how Optuna samples it. Trial N trains in `DIR/trial_N`; the study lives in `--storage`.
"""
import argparse
import os

from allennlp.commands.subcommand import Subcommand

from allennlp_optuna.commands.options import (
    add_file_friendly_logging_argument,
    add_overrides_argument,
    add_study_arguments,
)
from allennlp_optuna.commands.worker_options import add_worker_arguments, worker_arguments
from allennlp_optuna.errors import exit_on_configuration_error
from allennlp_optuna.tuning import ARCHIVE_BEST, ARCHIVE_CHOICES
from allennlp_optuna.workers import INTERRUPTED_MESSAGE


@Subcommand.register("tune")
class Tune(Subcommand):
    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Optimize the hyperparameters of a model with Optuna."
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument("param_path", type=str, help="Jsonnet config that reads hyperparameters with std.extVar")
        subparser.add_argument(
            "hparam_path",
            type=str,
            help='search-space file: a JSON list of {"type": "int"|"float"|"categorical", "attributes": {...}}',
        )
        subparser.add_argument(
            "-s",
            "--serialization-dir",
            required=True,
            type=str,
            help="directory holding one serialization directory per trial (DIR/trial_N)",
        )
        add_study_arguments(subparser, "name of the study (default: the config file's name without extension)")
        subparser.add_argument(
            "--metrics",
            type=str,
            default="best_validation_loss",
            help="key of each trial's metrics.json to optimize",
        )
        subparser.add_argument(
            "--direction",
            choices=("minimize", "maximize"),
            default=None,
            help="optimization direction (default: minimize for loss/perplexity/error metrics, else maximize)",
        )
        subparser.add_argument("--n-trials", type=int, default=None, help="number of trials this command runs")
        subparser.add_argument(
            "--timeout", type=float, default=None, help="stop starting new trials after this many seconds"
        )
        subparser.add_argument(
            "--optuna-param-path",
            type=str,
            default=None,
            help='JSON naming the sampler and pruner: {"sampler": {"type": "TPESampler", "attributes": {...}}, '
            '"pruner": {...}}',
        )
        subparser.add_argument(
            "--skip-if-exists",
            action="store_true",
            help="join (resume) the study if it already exists instead of refusing",
        )
        subparser.add_argument(
            "--skip-exception",
            action="store_true",
            help="record a failing trial as FAIL with its reason and continue the study",
        )
        add_overrides_argument(
            subparser, "a JSON structure used to override every trial's configuration, as in allennlp train"
        )
        add_file_friendly_logging_argument(subparser)
        subparser.add_argument(
            "--no-data-reuse",
            dest="reuse_data",
            action="store_false",
            help="read the data and build the vocabulary again in every trial, even when their "
            "configuration is identical to an earlier trial's",
        )
        subparser.add_argument(
            "--enqueue-trial",
            action="append",
            default=[],
            metavar="VALUES_JSON",
            help='JSON object of hyperparameter values, e.g. {"lr": 0.1, "dropout": 0.2}, to run first '
            "(a baseline, marked in DIR/report.html); repeatable",
        )
        subparser.add_argument(
            "--archive",
            choices=ARCHIVE_CHOICES,
            default=ARCHIVE_BEST,
            help="which trials get a model.tar.gz: 'best' (default) the study's best trial, archived when tune "
            "ends; 'all' every trial, as allennlp train. Every trial keeps config.json, best.th and "
            "vocabulary/, which allennlp evaluate also accepts in place of an archive",
        )
        add_worker_arguments(subparser)
        subparser.set_defaults(func=tune_from_args)
        return subparser


@exit_on_configuration_error("tune", interrupted=INTERRUPTED_MESSAGE)
def tune_from_args(args: argparse.Namespace) -> None:
    """Run :func:`allennlp_optuna.tuning.tune` with the command line's arguments."""
    from allennlp_optuna.memory import exit_without_final_collection
    from allennlp_optuna.report import REPORT_FILE
    from allennlp_optuna.summary import summarize
    from allennlp_optuna.tuning import tune

    study = tune(
        args.param_path,
        args.hparam_path,
        args.serialization_dir,
        study_name=args.study_name,
        storage=args.storage,
        metrics=args.metrics,
        direction=args.direction,
        n_trials=args.n_trials,
        timeout=args.timeout,
        optuna_param_path=args.optuna_param_path,
        skip_if_exists=args.skip_if_exists,
        skip_exception=args.skip_exception,
        include_package=args.include_package,
        overrides=args.overrides,
        file_friendly_logging=args.file_friendly_logging,
        reuse_data=args.reuse_data,
        enqueue_trial=args.enqueue_trial,
        archive=args.archive,
        **worker_arguments(args),
    )
    print(f"Report: {os.path.join(args.serialization_dir, REPORT_FILE)}", flush=True)
    print(summarize(study), flush=True)
    exit_without_final_collection()
