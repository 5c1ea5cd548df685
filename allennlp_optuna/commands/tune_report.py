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
        parser.add_argument(
            "-o", "--output", type=str, default=None,
            help="where to write the HTML page (default: report.html beside the study's trial directories, where "
            "allennlp tune keeps it)",
        )
        parser.add_argument("--csv", type=str, default=None, help="also write the trials table as CSV here")

    @exit_on_configuration_error("tune-report")
    def run(self, args: argparse.Namespace) -> None:
        """Load the study and run :func:`allennlp_optuna.output.report.write_report`."""
        from allennlp_optuna.output.report import default_report_path, write_report
        from allennlp_optuna.study.preflight import check_output_file
        from allennlp_optuna.study.storage import read_study

        for path, flag in ((args.output, "-o/--output"), (args.csv, "--csv")):
            if path is not None:
                check_output_file(path, flag)
        stored = read_study(args.study_name, args.storage)
        output = args.output or default_report_path(stored)
        if args.output is None:
            check_output_file(output, "-o/--output")
        write_report(stored.study, output, csv_path=args.csv)
        print(f"Wrote {output}" + (f" and {args.csv}" if args.csv else ""), flush=True)
