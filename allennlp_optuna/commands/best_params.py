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

from allennlp_optuna.commands import options
from allennlp_optuna.core.errors import exit_on_configuration_error
from allennlp_optuna.output.best_params import FORMATS


@Subcommand.register("best-params")
class BestParams(options.PluginCommand):
    description = "Print the best hyperparameters of a study, or write its best config."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "config_file",
            nargs="?",
            default=None,
            help="the study's Jsonnet config; given, the best config is output as plain JSON instead of the values",
        )
        options.add_study_arguments(parser, "name of the study (default: the storage's only study)")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            default=None,
            help="how to print the values: plain name=value pairs (default), a json object, "
            "or shell export lines to eval",
        )
        parser.add_argument(
            "--output-file",
            type=str,
            default=None,
            help="with CONFIG: write the best config to this file (and print the values) instead of printing it",
        )
        options.add_overrides_argument(
            parser, "with CONFIG: a JSON structure overriding the config, as in allennlp train (use tune's)"
        )
        parser.add_argument(
            "--trial",
            type=int,
            default=None,
            help="the trial to print or export (default: the best; a multi-objective study prints its Pareto front)",
        )

    @exit_on_configuration_error("best-params")
    def run(self, args: argparse.Namespace) -> None:
        """Print the best values (or config) of the study the command line names."""
        best_params(args)


def best_params(args: argparse.Namespace) -> None:
    """Print the best values (or config) of the study ``args`` name, as ``allennlp best-params`` does."""
    from allennlp_optuna.output.best_params import (
        constraints_note,
        describe_trial,
        format_best_params,
        format_pareto_front,
    )
    from allennlp_optuna.trial.choose import chosen_trial
    from allennlp_optuna.study.config import write_config
    from allennlp_optuna.study.preflight import check_output_file
    from allennlp_optuna.study.storage import read_study
    from allennlp_optuna.trial.retrain import trial_config

    if args.config_file is None and (args.output_file or args.overrides):
        raise ConfigurationError("--output-file and --overrides need a CONFIG argument to evaluate")
    if args.config_file is not None and args.output_file is None and args.format is not None:
        raise ConfigurationError("with CONFIG the config is printed; add --output-file FILE to also print the values")
    if args.output_file is not None:
        check_output_file(args.output_file, "--output-file")
    stored = read_study(args.study_name, args.storage)
    note = constraints_note(stored)
    if note is not None and args.trial is None:
        print(note, file=sys.stderr, flush=True)
    if stored.is_multi and args.trial is None and args.config_file is None:
        print(f"Pareto front of study {stored.name!r} (choose one with --trial)", file=sys.stderr, flush=True)
        print(format_pareto_front(stored, args.format or "plain"), flush=True)
        return
    trial = chosen_trial(stored, args.trial)
    print(f"{'Best' if args.trial is None else 'Chosen'} {describe_trial(stored, trial)}", file=sys.stderr, flush=True)
    if args.config_file is not None:
        config, _ = trial_config(args.config_file, stored, trial, args.overrides)
        if args.output_file is None:
            print(json.dumps(config, indent=2), flush=True)
            return
        write_config(config, args.output_file)
        print(f"Wrote the best config to {args.output_file}", file=sys.stderr, flush=True)
    print(format_best_params(trial.params, args.format or "plain"), flush=True)
