"""
The `tune-report` subcommand writes a study's HTML report and trials CSV.

    allennlp tune-report --study-name NAME --storage URL [-o report.html] [--csv trials.csv]

The page is self-contained (plotly.js embedded) and opens offline; `allennlp tune` keeps
the same page up to date in its serialization directory while it runs.
"""
import argparse

from allennlp.commands.subcommand import Subcommand

from allennlp_optuna.commands import options
from allennlp_optuna.core.errors import exit_on_configuration_error


@Subcommand.register("tune-report")
class TuneReport(options.PluginCommand):
    description = "Write an HTML report (summary, trials table, plots) and a CSV of a study's trials."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        options.add_study_arguments(parser, "name of the study (default: the storage's only study)")
        parser.add_argument("-o", "--output", type=str, default="report.html", help="where to write the HTML page")
        parser.add_argument("--csv", type=str, default=None, help="also write the trials table as CSV here")

    @exit_on_configuration_error("tune-report")
    def run(self, args: argparse.Namespace) -> None:
        """Load the study and run :func:`allennlp_optuna.output.report.write_report`."""
        from allennlp_optuna.output.report import write_report
        from allennlp_optuna.study.preflight import check_output_file
        from allennlp_optuna.study.storage import load_existing_study

        check_output_file(args.output, "-o/--output")
        if args.csv is not None:
            check_output_file(args.csv, "--csv")
        study = load_existing_study(args.study_name, args.storage)
        write_report(study, args.output, csv_path=args.csv)
        print(f"Wrote {args.output}" + (f" and {args.csv}" if args.csv else ""), flush=True)
