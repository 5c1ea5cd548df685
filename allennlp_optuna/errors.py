"""How problems a user can fix reach the terminal: one line, no traceback, non-zero exit."""
import functools
import json
import sys
from typing import Any, Callable, TypeVar

from allennlp.common.checks import ConfigurationError

F = TypeVar("F", bound=Callable[..., Any])

USER_ERROR_EXIT_CODE = 2


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message (library errors can be long)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_json_file(path: str, description: str) -> Any:
    """Parse a JSON file that a user named; a missing or malformed file is a ``ConfigurationError``.

    Args:
        path: the file to read.
        description: what the file is, as the message names it, e.g. ``"Optuna settings file"``.

    Raises:
        ConfigurationError: ``cannot read DESCRIPTION PATH: REASON`` or
            ``DESCRIPTION PATH is not valid JSON: DETAIL``.
    """
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except OSError as error:
        raise ConfigurationError(f"cannot read {description} {path}: {error.strerror}")
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"{description} {path} is not valid JSON: {error}")


def exit_on_configuration_error(command: str) -> Callable[[F], F]:
    """Decorate a ``*_from_args`` function: a ``ConfigurationError`` becomes one stderr line.

    The line reads ``allennlp COMMAND: error: MESSAGE`` and the process exits with status 2,
    as argparse does for a bad flag. Other exceptions (real bugs, crashes) keep their traceback.
    """

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except ConfigurationError as error:
                sys.stderr.flush()
                print(f"allennlp {command}: error: {error.message}", file=sys.stderr)
                sys.exit(USER_ERROR_EXIT_CODE)

        return wrapper  # type: ignore[return-value]

    return decorate
