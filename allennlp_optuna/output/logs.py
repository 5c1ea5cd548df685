"""Where AllenNLP's and Optuna's logs go while ``allennlp tune`` shows its console.

AllenNLP's INFO log goes complete into each trial's ``out.log``, as ``allennlp train`` writes it;
the console gets warnings and errors (each once), and ``--verbose`` streams everything.
"""
import contextlib
import io
import logging
import sys
from typing import Iterator, List, Set, TextIO, Tuple

import optuna

class _Discard(io.TextIOBase):
    """A text stream that drops what it is given (AllenNLP's progress bars, in the quiet console)."""

    def write(self, text: str) -> int:
        return len(text)


UNACTIONABLE: Tuple[Tuple[str, str], ...] = (
    # AllenNLP 2.10's trainer (its last release) calls torch.cuda.amp.autocast, deprecated in torch 2.4.
    ("py.warnings", "`torch.cuda.amp.autocast(args...)` is deprecated"),
    # AllenNLP passes device_type 'cuda' to autocast on machines without a GPU (torch 1.12 and 2.x warn).
    ("py.warnings", "User provided device_type of 'cuda'"),
    # AllenNLP asks for early stopping; with a pruner, `patience` is what tune advises against (plan_pruning).
    ("allennlp.training.gradient_descent_trainer", "patience was set to None"),
)
"""Warnings no user can act on, as ``(logger, words of the message)``: kept out of the quiet console
(``tune``, ``retrain``); they stay in each training's ``out.log`` and in ``--verbose`` output."""


class OncePerRun(logging.Filter):
    """Let each warning through once (every trial repeats the same ones), none of :data:`UNACTIONABLE`;
    all stay in ``out.log``."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: Set[Tuple[str, int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(record.name == name and words in message for name, words in UNACTIONABLE):
            return False
        key = (record.name, record.levelno, message)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def _console_handlers() -> List[logging.StreamHandler]:
    """The root logger's handlers that write to the console (not to a file, not pytest's)."""
    consoles = {id(sys.stdout), id(sys.stderr), id(sys.__stdout__), id(sys.__stderr__)}
    return [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler) and id(handler.stream) in consoles
    ]


@contextlib.contextmanager
def trial_logs_in_files(log_stream: TextIO) -> Iterator[None]:
    """While open, trials log INFO only to their ``out.log``; warnings and errors reach ``log_stream``.

    AllenNLP's ``train_model`` writes its log to ``out.log`` and to the console, and its progress
    bars to standard error. Here the console handlers (those there now, and those each training
    installs) keep WARNING and above and write them to ``log_stream``; the bars are dropped
    (``out.log`` keeps AllenNLP's periodic copy of them); Python warnings are logged; Optuna's
    per-trial INFO lines are not printed. Everything is put back on leaving.
    """
    from allennlp_optuna.core.compat import console_log_handlers_adjusted

    once = OncePerRun()

    def quiet(handler: logging.StreamHandler) -> None:
        handler.setLevel(max(handler.level, logging.WARNING))
        handler.setStream(log_stream)
        handler.addFilter(once)

    saved = [(handler, handler.level, handler.stream) for handler in _console_handlers()]
    for handler, _, _ in saved:
        quiet(handler)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.captureWarnings(True)
    try:
        with contextlib.redirect_stderr(_Discard()), console_log_handlers_adjusted(quiet):  # type: ignore[arg-type]
            yield
    finally:
        logging.captureWarnings(False)
        optuna.logging.set_verbosity(verbosity)
        for handler, level, stream in saved:
            handler.setStream(stream)
            handler.setLevel(level)
            handler.removeFilter(once)


@contextlib.contextmanager
def quiet_setup(verbose: bool) -> Iterator[None]:
    """Without ``verbose``, only warnings reach the console while ``tune`` prepares the study.

    The INFO lines of that phase (the inferred direction, the pruning callback, Optuna's "A new
    study created") say what the console's header says; ``--verbose`` keeps them.
    """
    if verbose:
        yield
        return
    saved = [(handler, handler.level) for handler in _console_handlers()]
    for handler, level in saved:
        handler.setLevel(max(level, logging.WARNING))
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
        for handler, level in saved:
            handler.setLevel(level)

