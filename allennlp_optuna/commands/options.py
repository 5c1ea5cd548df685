"""What every command of the plugin shares, defined once: the command shell and the common options."""
import argparse
from typing import Any

from allennlp.commands.subcommand import Subcommand

from allennlp_optuna.core.errors import first_line
from allennlp_optuna.study.storage import DEFAULT_STORAGE


class PluginCommand(Subcommand):
    """An ``allennlp`` subcommand of the plugin: a parser of its options and a function to run.

    A command sets :attr:`description` (also its line in ``allennlp --help``), adds its options in
    :meth:`add_arguments` and runs in :meth:`run`, which unpacks ``args`` and calls a plain
    function a script can call too. Every command takes ``--include-package``.
    """

    requires_plugins = False  # its own --include-package (add_include_package_argument) reports a bad package
    description = ""

    def add_subparser(self, parser: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
        subparser = parser.add_parser(self.name, description=self.description, help=self.description)
        self.add_arguments(subparser)
        add_include_package_argument(subparser)
        subparser.set_defaults(func=self.run)
        return subparser

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's own options."""
        raise NotImplementedError

    def run(self, args: argparse.Namespace) -> Any:
        """Run the command with the parsed ``args``."""
        raise NotImplementedError


def importable_package(name: str) -> str:
    """argparse type of ``--include-package``: the package, imported with its submodules."""
    from allennlp.common.util import import_module_and_submodules

    try:
        import_module_and_submodules(name)
    except Exception as error:  # ModuleNotFoundError, and whatever the package's own code raises
        raise argparse.ArgumentTypeError(f"cannot import {name!r}: {first_line(error)}")
    return name


def add_include_package_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--include-package``, checked as it is parsed (a missing package is one ``error:`` line).

    AllenNLP adds this flag itself to commands with ``requires_plugins`` and imports the packages
    with no error handling (a traceback); the plugin's commands set ``requires_plugins = False``
    and add it here instead. Plugins are imported anyway: AllenNLP imports them to find the
    plugin's commands.
    """
    parser.add_argument(
        "--include-package",
        type=importable_package,
        action="append",
        default=[],
        help="additional packages to include",
    )


def add_serialization_dir_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """Add the required ``-s/--serialization-dir``, as ``allennlp train`` has it."""
    parser.add_argument("-s", "--serialization-dir", required=True, type=str, help=help)


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


def add_overrides_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """Add ``-o/--overrides``, a JSON structure applied to the config as ``allennlp train -o``."""
    parser.add_argument("-o", "--overrides", type=str, default="", help=help)


def add_file_friendly_logging_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--file-friendly-logging``, as ``allennlp train`` has it."""
    parser.add_argument(
        "--file-friendly-logging",
        action="store_true",
        help="outputs tqdm status on separate lines and slows tqdm refresh rate",
    )
