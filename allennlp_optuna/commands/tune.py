"""
The `tune` subcommand searches hyperparameters of an AllenNLP config with Optuna.

    allennlp tune CONFIG.jsonnet SEARCH_SPACE.json --serialization-dir DIR [options]
    allennlp tune CONFIG.jsonnet SEARCH_SPACE.json -s DIR --storage /shared/study.log \
        --launcher slurm --n-workers 8 --sbatch "--partition=gpu --gres=gpu:1" --max-trials 64

The config reads each hyperparameter with `std.extVar('name')`; the search-space file says
how Optuna samples it. Trial N trains in `DIR/trial_N`; the study lives in `--storage`.
"""
import argparse

from allennlp.commands.subcommand import Subcommand

from allennlp_optuna.commands import options
from allennlp_optuna.commands.worker_options import add_worker_arguments
from allennlp_optuna.core.errors import exit_on_configuration_error
from allennlp_optuna.parallel.signals import INTERRUPTED_MESSAGE
from allennlp_optuna.study.settings import ARCHIVE_BEST, ARCHIVE_CHOICES


@Subcommand.register("tune")
class Tune(options.PluginCommand):
    description = "Optimize the hyperparameters of a model with Optuna."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_input_arguments(parser)
        options.add_study_arguments(parser, "name of the study (default: the config file's name without extension)")
        add_search_arguments(parser)
        options.add_overrides_argument(
            parser, "a JSON structure used to override every trial's configuration, as in allennlp train"
        )
        options.add_file_friendly_logging_argument(parser)
        parser.add_argument(
            "--verbose",
            action="store_true",
            help="stream AllenNLP's training log to the console as allennlp train does (it always goes "
            "to each trial's DIR/trial_N/out.log)",
        )
        add_trial_arguments(parser)
        add_worker_arguments(parser)

    @exit_on_configuration_error("tune", interrupted=INTERRUPTED_MESSAGE)
    def run(self, args: argparse.Namespace) -> None:
        """Run :func:`~allennlp_optuna.tuning.tune_study` (:func:`~allennlp_optuna.cluster.launch_study` with
        ``--launcher slurm``) with the settings the command line gives."""
        from allennlp_optuna.cluster.launcher import launch_study
        from allennlp_optuna.output.logs import quiet_setup
        from allennlp_optuna.output.summary import next_commands, summarize
        from allennlp_optuna.study.settings import LAUNCH_LOCAL, TuneSettings
        from allennlp_optuna.trial.memory import exit_without_final_collection
        from allennlp_optuna.tuning import tune_study

        with quiet_setup(args.verbose):
            settings = TuneSettings.from_args(args)
            study = tune_study(settings) if settings.launcher == LAUNCH_LOCAL else launch_study(settings)
        if study is None:  # submitted with --detach; launch_study said how to follow the job
            return
        print(summarize(study), flush=True)
        print("\n".join(next_commands(settings)), flush=True)
        exit_without_final_collection()


# Each flag's dest is the name of a TuneSettings field (TuneSettings.from_args reads them by name).


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the config, the search-space file and ``-s/--serialization-dir``."""
    parser.add_argument("param_path", type=str, help="Jsonnet config that reads hyperparameters with std.extVar")
    parser.add_argument(
        "hparam_path",
        type=str,
        help='search-space file: a JSON list of {"type": "int"|"float"|"categorical", "attributes": {...}}',
    )
    options.add_serialization_dir_argument(parser, "directory holding one serialization directory per trial (DIR/trial_N)")


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Add what to optimize, how long, with which sampler and pruner, and what to do on errors."""
    parser.add_argument(
        "--metrics",
        type=str,
        default="best_validation_loss",
        help="key of each trial's metrics.json to optimize; several separated by commas make a multi-objective "
        "study (e.g. best_validation_accuracy,num_parameters; durations such as training_duration count "
        "in seconds, num_parameters is the model's trainable parameter count)",
    )
    parser.add_argument(
        "--direction",
        type=str,
        default=None,
        help="minimize or maximize, one per --metrics key separated by commas (default: minimize for "
        "loss/perplexity/error/duration/num_parameters keys, else maximize)",
    )
    parser.add_argument(
        "--constraint",
        dest="constraints",
        action="append",
        default=[],
        metavar="KEY<=NUMBER",
        help="a bound on another key of each trial's metrics.json, KEY<=NUMBER or KEY>=NUMBER (e.g. "
        "peak_worker_0_memory_MB<=2000, num_parameters<=1e6); a trial that violates one is infeasible and never "
        "the best trial; repeatable",
    )
    parser.add_argument("--n-trials", type=int, default=None, help="number of trials this command runs")
    parser.add_argument("--timeout", type=float, default=None, help="stop starting new trials after this many seconds")
    parser.add_argument(
        "--optuna-param-path",
        type=str,
        default=None,
        help='JSON naming the sampler and pruner: {"sampler": {"type": "TPESampler", "attributes": {...}}, '
        '"pruner": {...}}',
    )
    parser.add_argument(
        "--skip-if-exists",
        action="store_true",
        help="join (resume) the study if it already exists instead of refusing",
    )
    parser.add_argument(
        "--skip-exception",
        action="store_true",
        help="record a failing trial as FAIL with its reason and continue the study",
    )


def add_trial_arguments(parser: argparse.ArgumentParser) -> None:
    """Add how trials read their data, which values run first and which trials are archived."""
    parser.add_argument(
        "--no-data-reuse",
        dest="reuse_data",
        action="store_false",
        help="read the data and build the vocabulary again in every trial, even when their "
        "configuration is identical to an earlier trial's",
    )
    parser.add_argument(
        "--enqueue-trial",
        action="append",
        default=[],
        metavar="VALUES_JSON",
        help='JSON object of hyperparameter values, e.g. {"lr": 0.1, "dropout": 0.2}, to run first '
        "(a baseline, marked in DIR/report.html); repeatable",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        metavar="K",
        help="train each trial K times, in DIR/trial_N/seed_k, with random_seed, numpy_seed and pytorch_seed "
        "the config's own plus k; the trial's value is the mean (each run's values and the standard "
        "deviation are user attributes)",
    )
    parser.add_argument(
        "--repeat",
        type=str,
        default=None,
        metavar="NAME=V1,V2,...",
        help="train each trial once per value of std.extVar(NAME) (a fold index, say), in DIR/trial_N/NAME_V; "
        "the trial's value is the mean; with --seeds every value is trained with every seed",
    )
    parser.add_argument(
        "--archive",
        choices=ARCHIVE_CHOICES,
        default=ARCHIVE_BEST,
        help="which trials get a model.tar.gz: 'best' (default) the study's best trial, archived when tune "
        "ends; 'all' every trial, as allennlp train. Every trial keeps config.json, best.th and "
        "vocabulary/, which allennlp evaluate also accepts in place of an archive",
    )
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep each finished trial's epoch checkpoints (model_state_e*, training_state_e* with the optimizer "
        "state); by default they are removed once the trial ends, keeping best.th, config.json, vocabulary/ "
        "and the metrics",
    )
