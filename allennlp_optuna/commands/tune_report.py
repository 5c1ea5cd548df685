"""
The `tune-report` subcommand writes a study's HTML report and trials CSV.

    allennlp tune-report --study-name NAME --storage URL [-o report.html] [--csv trials.csv]

The page is self-contained (plotly.js embedded) and opens offline; `allennlp tune` keeps
the same page up to date in its serialization directory while it runs.
"""
import argparse

from allennlp.commands.subcommand import Subcommand

from allennlp_optuna.commands.options import add_command_parser, add_include_package_argument, add_study_arguments
from allennlp_optuna.errors import exit_on_configuration_error


@Subcommand.register("tune-report")
class TuneReport(Subcommand):
    requires_plugins = False  # its own --include-package (add_include_package_argument) reports a bad package

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Write an HTML report (summary, trials table, plots) and a CSV of a study's trials."
        subparser = add_command_parser(parser, self.name, description)
        add_study_arguments(subparser, "name of the study (default: the storage's only study)")
        subparser.add_argument(
            "-o", "--output", type=str, default="report.html", help="where to write the HTML page"
        )
        subparser.add_argument("--csv", type=str, default=None, help="also write the trials table as CSV here")
        add_include_package_argument(subparser)
        subparser.set_defaults(func=tune_report_from_args)
        return subparser


@exit_on_configuration_error("tune-report")
def tune_report_from_args(args: argparse.Namespace) -> None:
    """Load the study and run :func:`allennlp_optuna.report.write_report`."""
    from allennlp_optuna.preflight import check_output_file
    from allennlp_optuna.report import write_report
    from allennlp_optuna.study import load_existing_study

    check_output_file(args.output, "-o/--output")
    if args.csv is not None:
        check_output_file(args.csv, "--csv")
    study = load_existing_study(args.study_name, args.storage)
    write_report(study, args.output, csv_path=args.csv)
    print(f"Wrote {args.output}" + (f" and {args.csv}" if args.csv else ""), flush=True)
