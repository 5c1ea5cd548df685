"""How problems a user can fix reach the terminal: one line, no traceback, non-zero exit."""
import difflib
import functools
import json
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, TypeVar

from allennlp.common.checks import ConfigurationError

from allennlp_optuna.core.redaction import redact_url

F = TypeVar("F", bound=Callable[..., Any])

USER_ERROR_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130


class StudyError(ConfigurationError):
    """A problem every trial of the study would hit (a ``--metrics`` key that training never
    reports): it stops the study even with ``--skip-exception``, which skips only one trial's failure."""


class Detached(KeyboardInterrupt):
    """Ctrl-C while following work that goes on without this process (a SLURM job array); the
    message says how to reach the work, and is what the command prints."""


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message (library errors can be long)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def closest_names(word: str, names: Sequence[str]) -> List[str]:
    """The ``names`` closest to a mistyped ``word`` (difflib's ratio of the names without their leading
    dashes, at least 0.6): the best one and
    any within 0.05 of it, best first; empty when none is close.

    Example::

        >>> closest_names("--n-trails", ["--n-trials", "--max-trials", "--timeout"])
        ['--n-trials']
    """
    def ratio(name: str) -> float:  # without the leading dashes, which every option shares
        return difflib.SequenceMatcher(None, word.lstrip("-"), name.lstrip("-")).ratio()

    scored = sorted(((ratio(name), name) for name in set(names)),
                    key=lambda pair: (-pair[0], pair[1]))
    close = [(ratio, name) for ratio, name in scored if ratio >= 0.6]
    return [name for ratio, name in close if ratio >= close[0][0] - 0.05] if close else []


def did_you_mean(unknown: Sequence[str], known: Sequence[str], other_names: Optional[Mapping[str, str]] = None) -> str:
    """``did you mean --n-trials?``: the ``known`` names closest to each ``unknown`` one (:func:`closest_names`);
    with several unknown names, each hint says which one it is for; empty when none is close.

    Args:
        unknown: the names not known.
        known: the names that are.
        other_names: known names that other tools spell differently (``--sampler`` → ``--optuna-param-path``).
    """
    hints: Dict[str, str] = {}
    for name in unknown:
        other = (other_names or {}).get(name)
        close = [other] if other in known else closest_names(name, known)
        if close:
            hints[name] = " or ".join(close)
    if len(hints) > 1:
        return f"did you mean {', '.join(f'{close} (for {name})' for name, close in hints.items())}?"
    return f"did you mean {next(iter(hints.values()))}?" if hints else ""


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


def exit_on_configuration_error(command: str, interrupted: Optional[str] = None) -> Callable[[F], F]:
    """Decorate a ``*_from_args`` function: a ``ConfigurationError`` becomes one stderr line.

    The line reads ``allennlp COMMAND: error: MESSAGE`` and the process exits with status 2,
    as argparse does for a bad flag; a password in a URL is never printed back
    (:func:`~allennlp_optuna.core.redaction.redact_url`). With ``interrupted``, Ctrl-C / SIGTERM print
    ``allennlp COMMAND: INTERRUPTED`` (a :class:`Detached`'s own message instead) and exit with status 130.
    Other exceptions (real bugs,
    crashes) keep their traceback.
    """

    def leave(line: str, code: int) -> None:
        sys.stderr.flush()
        print(f"allennlp {command}: {line}", file=sys.stderr)
        sys.exit(code)

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except ConfigurationError as error:
                leave(f"error: {redact_url(error.message)}", USER_ERROR_EXIT_CODE)
            except KeyboardInterrupt as interruption:
                if interrupted is None:
                    raise
                leave(str(interruption) if isinstance(interruption, Detached) else interrupted, INTERRUPTED_EXIT_CODE)

        return wrapper  # type: ignore[return-value]

    return decorate
