"""What every command of the plugin shares, defined once: the command shell and the common options."""
import argparse
from typing import Any, List, Optional, Sequence, Tuple

from allennlp.commands.subcommand import Subcommand

from allennlp_optuna.core.compat import option_strings
from allennlp_optuna.core.errors import did_you_mean, first_line
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
        # argparse makes every subparser of the top-level parser's class (AllenNLP's, whose only
        # change is the help text of add_argument, done by now); this class makes an unknown option
        # the command's own error, with its usage, instead of AllenNLP's top-level one.
        subparser.__class__ = CommandParser
        return subparser

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's own options."""
        raise NotImplementedError

    def run(self, args: argparse.Namespace) -> Any:
        """Run the command with the parsed ``args``."""
        raise NotImplementedError


class CommandParser(argparse.ArgumentParser):
    """The parser of a plugin command: an unknown option is this command's error, naming the closest options.

    argparse leaves what a subcommand's parser does not know to the top-level parser, which prints
    AllenNLP's usage and ``allennlp: error: unrecognized arguments``. Here the command refuses them
    itself: its own usage, then one line such as ``allennlp tune: error: unrecognized arguments:
    --n-trails 8; did you mean --n-trials?``.
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Optional[Sequence[str]] = None, namespace: Optional[argparse.Namespace] = None
    ) -> Tuple[argparse.Namespace, List[str]]:
        """argparse's ``parse_known_args``; what the command does not know is an error
        (:func:`unrecognized_arguments`)."""
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(unrecognized_arguments(extras, option_strings(self), self.prog))
        return parsed, extras


OTHER_NAMES = {
    "--sampler": "--optuna-param-path",
    "--pruner": "--optuna-param-path",
    "--n-jobs": "--n-workers",
    "--gpus": "--devices",
    "--cuda-device": "--devices",
}
"""Options of Optuna and other tools that a plugin command spells another way."""


def unrecognized_arguments(extras: Sequence[str], options: Sequence[str], prog: str) -> str:
    """argparse's ``unrecognized arguments: ...`` and, per unknown option, the command's closest option(s).

    Example::

        >>> unrecognized_arguments(["--n-trails", "8"], ["--n-trials", "--timeout"], "allennlp tune")
        'unrecognized arguments: --n-trails 8; did you mean --n-trials?'
    """
    unknown = [extra.split("=", 1)[0] for extra in extras if extra[:1] == "-" and extra[1:2] not in "0123456789."]
    message = f"unrecognized arguments: {' '.join(extras)}"
    hint = did_you_mean(unknown, options, OTHER_NAMES)
    if hint:
        return f"{message}; {hint}"
    return f"{message}; {prog} --help lists its options" if unknown else message


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
