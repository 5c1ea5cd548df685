"""Keeping storage passwords out of everything the plugin writes or prints.

A study on ``postgresql://user:password@host/db`` must not put the password into trial
configs, archives (which people share), reports, logs or messages. What is written carries
the URL with the password replaced (:func:`redact_url`); a training process that must connect
(the pruning callback) gets the full URL back from its environment (:func:`restore_password`),
which the trial's executor fills for the time of the training (:func:`storage_in_environment`).
"""
import contextlib
import os
import re
from typing import Iterator

STORAGE_ENVIRONMENT_VARIABLE = "ALLENNLP_OPTUNA_STORAGE"
"""Holds the full storage URL while a trial trains, for the processes training spawns."""

HIDDEN = "***"

_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^@/\s]*)@")


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``; in a longer text, every URL's.

    The one password mask of the package: messages, the console, configs and reports all use it.

    Example::

        >>> redact_url("postgresql://tuner:s3cret@db.example.com/studies")
        'postgresql://tuner:***@db.example.com/studies'
        >>> redact_url("sqlite:///study.db")
        'sqlite:///study.db'
    """
    return _PASSWORD.sub(lambda m: f"{m.group('head')}{HIDDEN}@", url)


def restore_password(redacted: str) -> str:
    """The full URL of a redacted storage URL, from the environment of the running trial.

    Returns ``redacted`` unchanged when it hides nothing or the environment holds another URL.
    """
    full = os.environ.get(STORAGE_ENVIRONMENT_VARIABLE)
    if full is not None and full != redacted and redact_url(full) == redacted:
        return full
    return redacted


@contextlib.contextmanager
def storage_in_environment(url: str) -> Iterator[None]:
    """Within this block, :func:`restore_password` (here and in spawned processes) finds ``url``."""
    if redact_url(url) == url:
        yield
        return
    previous = os.environ.get(STORAGE_ENVIRONMENT_VARIABLE)
    os.environ[STORAGE_ENVIRONMENT_VARIABLE] = url
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(STORAGE_ENVIRONMENT_VARIABLE, None)
        else:
            os.environ[STORAGE_ENVIRONMENT_VARIABLE] = previous
