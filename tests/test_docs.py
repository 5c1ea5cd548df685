"""The documentation says what the commands do: every option of `--help` is in docs/options.md and
nothing else is; the README stays a page a newcomer reads."""
import argparse
import re
from typing import Dict, Set

import pytest

from allennlp_optuna.commands import BestParams, Retrain, Tune, TuneReport
from tests.conftest import REPO

COMMANDS = {"tune": Tune, "best-params": BestParams, "retrain": Retrain, "tune-report": TuneReport}


def documented_options() -> Dict[str, Set[str]]:
    """Per command, the flags in the first column of its table in docs/options.md."""
    sections = re.split(r"^## `allennlp ([a-z-]+)`$", (REPO / "docs" / "options.md").read_text(), flags=re.M)
    options = {}
    for name, body in zip(sections[1::2], sections[2::2]):
        first_cells = re.findall(r"^\| (.+?) \|", body, flags=re.M)
        options[name] = {flag for cell in first_cells for flag in re.findall(r"`(-[-a-z]+)", cell)}
    return options


def help_options(command: str) -> Set[str]:
    """The option strings `allennlp COMMAND --help` lists (besides -h/--help)."""
    parser = COMMANDS[command]().add_subparser(argparse.ArgumentParser().add_subparsers())
    return {flag for action in parser._actions for flag in action.option_strings} - {"-h", "--help"}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_of_help_is_documented_and_nothing_else(command: str) -> None:
    documented = documented_options()[command] | {"--include-package"}  # said once, above the tables
    assert help_options(command) == documented


def test_the_readme_fits_on_a_screen_and_holds_no_placeholder() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert not re.search(r"<this repository>|MEASURED_|CLUSTER_SECTION|TODO", readme)
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPO / link).is_file(), link
