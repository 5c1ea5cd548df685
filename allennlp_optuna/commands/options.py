"""Command-line options shared by every command of the plugin, defined once."""
import argparse

from allennlp_optuna.study import DEFAULT_STORAGE


def add_study_arguments(parser: argparse.ArgumentParser, study_name_help: str) -> None:
    """Add ``--study-name`` and ``--storage``, which name the study a command works on."""
    parser.add_argument("--study-name", type=str, default=None, help=study_name_help)
    parser.add_argument(
        "--storage",
        type=str,
        default=DEFAULT_STORAGE,
        help="Optuna storage URL: sqlite:///path.db, postgresql://user:password@host/db, "
        "mysql://...; the default is a file in the current directory",
    )
