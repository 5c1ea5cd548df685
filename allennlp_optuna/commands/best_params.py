"""
The `best-params` subcommand prints the best hyperparameters of a study, or its best config.

    allennlp best-params [--study-name NAME] [--storage URL] [--format plain|json|shell]
    allennlp best-params CONFIG.jsonnet [--output-file best_config.json] [-o OVERRIDES]
    allennlp best-params [CONFIG.jsonnet] --trial N      # a chosen trial (of a Pareto front, say)

Without CONFIG it prints the best trial's values: `name=value` pairs (as the older plugin did),
a JSON object, or `export` lines for `eval "$(allennlp best-params --format shell)"` before
`allennlp train`. With CONFIG it prints (or writes) the best trial's config as plain JSON that
`allennlp train` accepts. The best trial's number, value and directory go to stderr. A
multi-objective study has no best trial: it prints its Pareto front (a table, or with
`--format json` a list of `{"number", "values", "params"}`); `--trial N` takes one trial.
In a study tuned with `--constraint`, the best trial and the front are chosen among the feasible
trials; a line on stderr says how many completed trials violate a constraint.
"""
import argparse
import json
import sys

from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError

from allennlp_optuna.best import FORMATS
from allennlp_optuna.commands.options import (
    add_command_parser,
    add_include_package_argument,
    add_overrides_argument,
    add_study_arguments,
)
from allennlp_optuna.errors import exit_on_configuration_error


@Subcommand.register("best-params")
class BestParams(Subcommand):
    requires_plugins = False  # its own --include-package (add_include_package_argument) reports a bad package

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Print the best hyperparameters of a study, or write its best config."
        subparser = add_command_parser(parser, self.name, description)
        subparser.add_argument(
            "config_file",
            nargs="?",
            default=None,
            help="the study's Jsonnet config; given, the best config is output as plain JSON instead of the values",
        )
        add_study_arguments(subparser, "name of the study (default: the storage's only study)")
        subparser.add_argument(
            "--format",
            choices=FORMATS,
            default=None,
            help="how to print the values: plain name=value pairs (default), a json object, "
            "or shell export lines to eval",
        )
        subparser.add_argument(
            "--output-file",
            type=str,
            default=None,
            help="with CONFIG: write the best config to this file (and print the values) instead of printing it",
        )
        add_overrides_argument(
            subparser, "with CONFIG: a JSON structure overriding the config, as in allennlp train (use tune's)"
        )
        add_include_package_argument(subparser)
        subparser.add_argument(
            "--trial",
            type=int,
            default=None,
            help="the trial to print or export (default: the best; a multi-objective study prints its Pareto front)",
        )
        subparser.set_defaults(func=best_params_from_args)
        return subparser


@exit_on_configuration_error("best-params")
def best_params_from_args(args: argparse.Namespace) -> None:
    """Print the best values (or config) of the study the command line names."""
    from allennlp_optuna.best import (
        constraints_note,
        describe_trial,
        format_best_params,
        format_pareto_front,
        require_best_trial,
    )
    from allennlp_optuna.config import write_config
    from allennlp_optuna.objectives import is_multi_objective
    from allennlp_optuna.preflight import check_output_file
    from allennlp_optuna.retraining import trial_config, trial_to_retrain
    from allennlp_optuna.study import load_existing_study

    if args.config_file is None and (args.output_file or args.overrides):
        raise ConfigurationError("--output-file and --overrides need a CONFIG argument to evaluate")
    if args.config_file is not None and args.output_file is None and args.format is not None:
        raise ConfigurationError("with CONFIG the config is printed; add --output-file FILE to also print the values")
    if args.output_file is not None:
        check_output_file(args.output_file, "--output-file")
    study = load_existing_study(args.study_name, args.storage)
    note = constraints_note(study)
    if note is not None and args.trial is None:
        print(note, file=sys.stderr, flush=True)
    if args.trial is not None:
        trial = trial_to_retrain(study, args.trial)
        print(f"Chosen {describe_trial(study, trial)}", file=sys.stderr, flush=True)
    elif is_multi_objective(study) and args.config_file is None:
        print(f"Pareto front of study {study.study_name!r} (choose one with --trial)", file=sys.stderr, flush=True)
        print(format_pareto_front(study, args.format or "plain"), flush=True)
        return
    else:
        trial = require_best_trial(study)
        print(f"Best {describe_trial(study, trial)}", file=sys.stderr, flush=True)
    if args.config_file is not None:
        config, _ = trial_config(args.config_file, study, trial, args.overrides)
        if args.output_file is None:
            print(json.dumps(config, indent=2), flush=True)
            return
        write_config(config, args.output_file)
        print(f"Wrote the best config to {args.output_file}", file=sys.stderr, flush=True)
    print(format_best_params(trial.params, args.format or "plain"), flush=True)
