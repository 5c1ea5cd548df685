"""What ``allennlp tune`` prints: the study, not the training log.

The console shows a header (study, storage, objective, sampler and pruner, where trials and the
report go), a status while trials run, one line per finished trial, warnings and errors, and at
the end the commands to run next. AllenNLP's INFO log goes complete into each trial's
``out.log``, as ``allennlp train`` writes it; ``--verbose`` also streams it to the console.

What the console shows is read from the study's storage by one watcher in the ``tune`` process
(:class:`StudyWatcher`), so ``--n-workers K`` gives one status for the whole study. On a terminal
the status updates in place (``rich``); to a file or a pipe it prints plain lines::

    trial 2 started: embedding_dim=8 dropout=0.2 lr=0.0131
    trial 2 PRUNED at epoch 2/3: best_validation_accuracy=0.61 (12s)
    3 of 8 trials | 2 COMPLETE, 1 PRUNED | best 0.842 (trial 1) | 41s elapsed, about 1m09s left
"""
import contextlib
import logging
import sys
import threading
import time
from typing import Any, Iterator, Optional, Set, TextIO

import optuna

from allennlp_optuna.core.compat import storage_engine
from allennlp_optuna.output.logs import trial_logs_in_files
from allennlp_optuna.study.storage import open_storage
from allennlp_optuna.output.view import FINISHED_STATES, StudyDescription, StudyView, finish_order

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
"""How often the watcher reads the study's storage."""


PLAIN_STATUS_SECONDS = 300.0
"""In plain output, how long running trials may go without a line before a status line repeats."""


class PlainOutput:
    """Plain lines for a file, a pipe or a CI log: no control codes, nothing rewritten.

    Args:
        stream: where the lines go.
        status_every: seconds running trials may go without a line before the status repeats.
    """

    def __init__(self, stream: TextIO, status_every: float = PLAIN_STATUS_SECONDS) -> None:
        self.stream = stream
        self.errors = sys.stderr
        self.status_every = status_every
        self.last_line = time.time()

    def line(self, text: str) -> None:
        """Print one line."""
        self.stream.write(text + "\n")
        self.stream.flush()
        self.last_line = time.time()

    def status(self, view: StudyView, now: float, changed: bool) -> None:
        """After trials finish, or when nothing was printed for a while, print the status (and running trials)."""
        if changed:
            self.line(view.status_line(now))
        elif view.running() and now - self.last_line >= self.status_every:
            self.line(view.status_line(now))
            for trial in view.running():
                self.line("  " + view.running_line(trial, now))

    def log_stream(self) -> TextIO:
        """Where warnings and errors are written: standard error, as it was when the output was made."""
        return self.errors

    def close(self) -> None:
        """Nothing to take down."""


class LiveOutput:
    """On a terminal: finished-trial lines scroll, the status below them updates in place (``rich``)."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream, highlight=False, markup=False)
        self.live = Live(console=self.console, auto_refresh=False, transient=True, redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def line(self, text: str) -> None:
        """Print one line above the status."""
        self.console.print(text, soft_wrap=True)

    def status(self, view: StudyView, now: float, changed: bool) -> None:
        """Redraw the status: the study's line, then one line per running trial."""
        from rich.text import Text

        lines = [view.status_line(now), *("  " + view.running_line(t, now) for t in view.running())]
        self.live.update(Text("\n".join(lines)), refresh=True)

    def log_stream(self) -> TextIO:
        """A stream whose lines are printed above the status."""
        from rich.file_proxy import FileProxy

        return FileProxy(self.console, self.console.file)  # type: ignore[return-value]

    def close(self) -> None:
        """Take the status away; the lines stay."""
        if self.live.is_started:
            self.live.stop()


def make_output(stream: TextIO) -> Any:
    """:class:`LiveOutput` when ``stream`` is a terminal (as ``rich`` detects it), else :class:`PlainOutput`."""
    from rich.console import Console

    return LiveOutput(stream) if Console(file=stream).is_terminal else PlainOutput(stream)


class StudyWatcher:
    """Reads the study's storage every :data:`POLL_SECONDS` in a thread and prints what changed.

    Use it as a context manager around the trials; on leaving it prints the last finished
    trials and one ``done`` line.

    Args:
        description: the run's :class:`StudyDescription`.
        monitor: the per-epoch metric shown for running trials.
        output: a :class:`PlainOutput` or :class:`LiveOutput`.
        poll_seconds: how often the storage is read.
    """

    def __init__(self, description: StudyDescription, monitor: str, output: Any, poll_seconds: float = POLL_SECONDS):
        self.description = description
        self.output = output
        self.poll_seconds = poll_seconds
        self.study = optuna.load_study(study_name=description.study_name, storage=open_storage(description.storage))
        earlier = {t.number for t in self.study.get_trials(deepcopy=False, states=FINISHED_STATES)}
        self.view = StudyView(description, monitor, earlier)
        self.announced: Set[int] = set(earlier)
        self.reported: Set[int] = set(earlier)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="allennlp-tune-console", daemon=True)

    def __enter__(self) -> "StudyWatcher":
        for line in self.description.header():
            self.output.line(line)
        self.thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stopping.set()
        self.thread.join()
        try:
            self.poll(final=True)
            self.output.close()  # the live status goes; the done line stays
            if exc_info[0] is None:
                self.output.line(self.view.done_line(time.time()))
        finally:
            engine = storage_engine(self.study)
            if engine is not None:
                engine.dispose()

    def _watch(self) -> None:
        while not self.stopping.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception as error:  # the console must never stop the study
                logger.debug("The console could not read the study: %s", error)

    def poll(self, final: bool = False) -> None:
        """Read the trials; print those started and finished since the last poll; refresh the status."""
        trials = self.study.get_trials(deepcopy=False)
        self.view.update(trials)
        now = time.time()
        changed = False
        plain = isinstance(self.output, PlainOutput)
        for trial in sorted(self.view.finished(), key=finish_order):
            if trial.number not in self.reported:
                self.reported.add(trial.number)
                if plain and trial.number not in self.announced:  # it ran between two reads
                    self.announced.add(trial.number)
                    self.output.line(self.view.started_line(trial))
                self.output.line(self.view.finished_line(trial))
                changed = True
        if not final:
            self.output.status(self.view, now, changed)
        for trial in self.view.running():  # a plain log says when each trial starts, and with what
            # A trial is RUNNING a moment before it has sampled its values: announce it once it has them
            # (or when it finishes, above).
            if plain and trial.number not in self.announced and trial.params:
                self.announced.add(trial.number)
                self.output.line(self.view.started_line(trial))


@contextlib.contextmanager
def study_console(
    description: StudyDescription, monitor: str, verbose: bool = False, stream: Optional[TextIO] = None
) -> Iterator[StudyWatcher]:
    """Show the study while its trials run: header, status, finished trials, then one ``done`` line.

    Args:
        description: what the header says.
        monitor: the per-epoch metric shown for running trials.
        verbose: also stream AllenNLP's training log to the console (else only to ``out.log``).
        stream: where the console goes (default: standard output, as it is when this is entered).
    """
    output = make_output(stream or sys.stdout)
    try:
        with contextlib.ExitStack() as stack:
            if not verbose:
                stack.enter_context(trial_logs_in_files(output.log_stream()))
            yield stack.enter_context(StudyWatcher(description, monitor, output))
    finally:
        output.close()

