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
import io
import json
import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, TextIO, Tuple

import optuna
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.constraints import Constraints
from allennlp_optuna.progress import format_seconds
from allennlp_optuna.objectives import format_values, non_dominated, split_keys
from allennlp_optuna.summary import best_trial, count_states, format_params
from allennlp_optuna.trial_attrs import FAIL_REASON_ATTR, SERIALIZATION_DIR_ATTR, VALUES_STD_ATTR

logger = logging.getLogger(__name__)

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

POLL_SECONDS = 1.0
"""How often the watcher reads the study's storage."""

PLAIN_STATUS_SECONDS = 300.0
"""In plain output, how long running trials may go without a line before a status line repeats."""


def mask_password(url: str) -> str:
    """A storage URL as it may be printed: its password replaced by ``***``.

    Example::

        >>> mask_password("postgresql://tuner:secret@db:5432/studies")
        'postgresql://tuner:***@db:5432/studies'
    """
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL (e.g. a journal file): mask what looks like user:password@
        scheme, sep, rest = url.partition("://")
        credentials, at, host = rest.rpartition("@")
        if sep and at and ":" in credentials:
            return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
        return url


@dataclass(frozen=True)
class StudyDescription:
    """What the console's header and closing lines say about a run.

    Args:
        study_name: the study's name.
        storage: the storage URL (printed with its password masked).
        direction: ``"minimize"`` or ``"maximize"``.
        metric: the ``metrics.json`` key the study optimizes.
        sampler: the sampler's class name.
        pruner: the pruner's class name, and whether trials report to it.
        serialization_dir: the trials' parent directory.
        report: the report's path.
        n_trials: the trials this run starts (``None``: unbounded).
        timeout: seconds this run may start trials for (``None``: unbounded).
        n_workers: the worker processes running trials at once.
        constraints: the ``--constraint`` bounds (see :mod:`allennlp_optuna.constraints`).
    """

    study_name: str
    storage: str
    direction: str
    metric: str
    sampler: str
    pruner: str
    serialization_dir: str
    report: str
    n_trials: Optional[int] = None
    timeout: Optional[float] = None
    n_workers: int = 1
    constraints: Tuple[str, ...] = ()

    def header(self) -> List[str]:
        """The lines printed before the first trial."""
        budget = [f"{self.n_trials} trials" if self.n_trials else "trials until stopped"]
        if self.timeout:
            budget.append(f"starting trials for {format_seconds(self.timeout)}")
        budget.append(f"{self.n_workers} worker{'s' if self.n_workers > 1 else ''}")
        return [
            f"Study {self.study_name!r} in {mask_password(self.storage)}: "
            + ", ".join(f"{d} {m}" for d, m in zip(split_keys(self.direction), split_keys(self.metric)))
            + (f" subject to {', '.join(self.constraints)}" if self.constraints else ""),
            f"  sampler {self.sampler}, pruner {self.pruner}; {', '.join(budget)}",
            f"  trials in {os.path.join(self.serialization_dir, 'trial_N')} (AllenNLP's log: trial_N/out.log); "
            f"report {self.report}",
        ]


# --- What the watcher reads from the storage --------------------------------------------------


def trial_seconds(trial: FrozenTrial, now: Optional[float] = None) -> float:
    """How long ``trial`` ran (or has been running, at ``now``)."""
    if trial.datetime_start is None:
        return 0.0
    end = trial.datetime_complete.timestamp() if trial.datetime_complete else (now or time.time())
    return max(0.0, end - trial.datetime_start.timestamp())


@dataclass
class EpochProgress:
    """How far a trial's training is: epochs done of all, and the latest monitored value.

    The pruning callback reports each epoch's value to the storage (intermediate values); a trial
    without it is read from the ``metrics_epoch_N.json`` files AllenNLP writes.
    """

    done: int = 0
    total: Optional[int] = None
    latest: Optional[float] = None

    def text(self) -> str:
        """``epoch 2/3``, or ``epoch 2`` when the number of epochs is unknown."""
        return f"epoch {self.done}/{self.total}" if self.total else f"epoch {self.done}"


def _read_json(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as file:
            content = json.load(file)
        return content if isinstance(content, dict) else {}
    except (OSError, ValueError):
        return {}


def epoch_progress(trial: FrozenTrial, monitor: str, total_epochs: Optional[int]) -> EpochProgress:
    """The :class:`EpochProgress` of ``trial``, from its intermediate values or its directory."""
    if trial.intermediate_values:
        last = max(trial.intermediate_values)
        return EpochProgress(last + 1, total_epochs, trial.intermediate_values[last])
    directory = trial.user_attrs.get(SERIALIZATION_DIR_ATTR)
    if not directory or not os.path.isdir(directory):
        return EpochProgress(0, total_epochs)
    epochs = [
        int(name[len("metrics_epoch_") : -len(".json")])
        for name in os.listdir(directory)
        if name.startswith("metrics_epoch_") and name.endswith(".json") and name[14:-5].isdigit()
    ]
    if not epochs:
        return EpochProgress(0, total_epochs)
    value = _read_json(os.path.join(directory, f"metrics_epoch_{max(epochs)}.json")).get(monitor)
    return EpochProgress(max(epochs) + 1, total_epochs, float(value) if isinstance(value, (int, float)) else None)


def configured_epochs(trial: FrozenTrial) -> Optional[int]:
    """``trainer.num_epochs`` of the config the trial trains with (its ``config.json``), if written yet."""
    directory = trial.user_attrs.get(SERIALIZATION_DIR_ATTR)
    if not directory:
        return None
    epochs = _read_json(os.path.join(directory, "config.json")).get("trainer", {}).get("num_epochs")
    return epochs if isinstance(epochs, int) else None


def fail_summary(trial: FrozenTrial) -> str:
    """The last line of a failed trial's recorded reason (the exception), or ``"no reason recorded"``."""
    reason = str(trial.user_attrs.get(FAIL_REASON_ATTR, "")).strip()
    last = reason.splitlines()[-1].strip() if reason else "no reason recorded"
    return last if len(last) <= 160 else last[:157] + "..."  # the whole traceback is in the trial's attributes


def finish_order(trial: FrozenTrial) -> Tuple[float, int]:
    """Sort key of finished trials: when they finished, then their number."""
    return (trial.datetime_complete.timestamp() if trial.datetime_complete else 0.0, trial.number)


def format_value(value: Optional[float]) -> str:
    """A metric value with 4 significant digits, ``-`` for none."""
    return "-" if value is None else f"{value:.4g}"


@dataclass
class StudyView:
    """What the console shows about the study at one moment, built from its trials.

    Args:
        description: the run's :class:`StudyDescription`.
        monitor: the per-epoch metric a running trial's latest value is read from.
        earlier: numbers of the trials that had finished before this run started.
        started: ``time.time()`` when this run started.
    """

    description: StudyDescription
    monitor: str
    earlier: Set[int] = field(default_factory=set)
    started: float = field(default_factory=time.time)
    trials: Sequence[FrozenTrial] = ()
    epochs: Dict[int, Optional[int]] = field(default_factory=dict)

    @property
    def constraints(self) -> Constraints:
        """The run's ``--constraint`` bounds."""
        return Constraints.parse(self.description.constraints)

    def update(self, trials: Sequence[FrozenTrial]) -> None:
        """Take the study's current trials."""
        self.trials = trials

    def this_run(self) -> List[FrozenTrial]:
        """The trials this run started or finished (those that had not finished before it)."""
        return [t for t in self.trials if t.number not in self.earlier and t.state != TrialState.WAITING]

    def finished(self) -> List[FrozenTrial]:
        """This run's finished trials."""
        return [t for t in self.this_run() if t.state in FINISHED_STATES]

    def running(self) -> List[FrozenTrial]:
        """The study's running trials."""
        return [t for t in self.trials if t.state == TrialState.RUNNING]

    def total_epochs(self, trial: FrozenTrial) -> Optional[int]:
        """The trial's ``num_epochs``, read once from its ``config.json``."""
        if self.epochs.get(trial.number) is None:
            self.epochs[trial.number] = configured_epochs(trial)
        return self.epochs[trial.number]

    def progress(self, trial: FrozenTrial) -> EpochProgress:
        """How far ``trial`` is (a pruned one: the epoch it stopped at)."""
        return epoch_progress(trial, self.monitor, self.total_epochs(trial))

    def started_line(self, trial: FrozenTrial) -> str:
        """``trial 3 started: lr=0.01 ...`` (floats to 4 significant digits; the summary has them whole)."""
        params = {k: format_value(v) if isinstance(v, float) else v for k, v in trial.params.items()}
        return f"trial {trial.number} started: {format_params(params)}"

    def finished_line(self, trial: FrozenTrial) -> str:
        """One line for a finished trial: state, value, where a pruned one stopped, duration."""
        seconds = format_seconds(trial_seconds(trial))
        metric = self.description.metric
        if trial.state == TrialState.COMPLETE:
            violations = self.constraints.describe_violations(trial)
            infeasible = f"; infeasible: {violations}" if violations else ""
            return f"trial {trial.number} COMPLETE: {self.values_text(trial)} ({seconds}){infeasible}"
        if trial.state == TrialState.PRUNED:
            progress = self.progress(trial)
            latest = progress.latest if progress.latest is not None else trial.values[0] if trial.values else None
            return f"trial {trial.number} PRUNED at {progress.text()}: {self.monitor}={format_value(latest)} ({seconds})"
        directory = trial.user_attrs.get(SERIALIZATION_DIR_ATTR)
        where = f"; see {os.path.join(directory, 'out.log')}" if directory else ""
        return f"trial {trial.number} FAIL: {fail_summary(trial)} ({seconds}{where})"

    def running_line(self, trial: FrozenTrial, now: float) -> str:
        """``trial 4: epoch 2/3, validation_accuracy=0.71, 35s``."""
        progress = self.progress(trial)
        return (
            f"trial {trial.number}: {progress.text()}, {self.monitor}={format_value(progress.latest)}, "
            f"{format_seconds(trial_seconds(trial, now))}"
        )

    def status_line(self, now: float) -> str:
        """Trials of this run done, the study's counts by state, the best so far, time left."""
        done = len(self.finished())
        n_trials = self.description.n_trials
        parts = [f"{done} of {n_trials} trials" if n_trials else f"{done} trials"]
        parts.append(count_states([t for t in self.trials if t.state != TrialState.WAITING]) or "no trials yet")
        if self.constraints:
            parts.append(f"{len(self.constraints.infeasible(self.trials))} infeasible")
        parts.append(self.best_text("best {value} (trial {number})", f"no {self._completed_word()} trial yet"))
        parts.append(self.time_text(now, done))
        return " | ".join(parts)

    def done_line(self, now: float) -> str:
        """The one line that says this run is done."""
        finished = self.finished()
        best_text = self.best_text(f"best {self.description.metric}={{value}} (trial {{number}})",
                                   f"no {self._completed_word()} trial")
        states = count_states(finished) or "none finished"
        if self.constraints:
            states += f", {len(self.constraints.infeasible(finished))} infeasible"
        return f"done: {len(finished)} trials in {format_seconds(now - self.started)} ({states}); {best_text}"

    def values_text(self, trial: FrozenTrial) -> str:
        """``metric=0.8421``; with several objectives (or repeats) :func:`~allennlp_optuna.objectives.format_values`."""
        keys = split_keys(self.description.metric)
        std = trial.user_attrs.get(VALUES_STD_ATTR)
        if len(keys) == 1 and std is None:
            return f"{keys[0]}={format_value(trial.values[0] if trial.values else None)}"
        return format_values(keys, trial.values, std)

    def best_text(self, template: str, nothing: str) -> str:
        """``template`` filled with the best trial's value and number; the Pareto front with several objectives."""
        if len(split_keys(self.description.metric)) > 1:
            feasible = [t for t in self.trials if self.constraints.is_feasible(t)]
            front = non_dominated(feasible, split_keys(self.description.direction))
            return f"Pareto front: trials {', '.join(str(t.number) for t in front)}" if front else nothing
        best = self._best()
        return nothing if best is None else template.format(value=format_value(best.value), number=best.number)

    def time_text(self, now: float, done: int) -> str:
        """Elapsed time and an estimate of the time left.

        The estimate divides the wall-clock time by the trials finished so far, over all workers,
        so it accounts for the trials running in parallel.
        """
        elapsed = now - self.started
        text = f"{format_seconds(elapsed)} elapsed"
        estimates = []
        n_trials = self.description.n_trials
        if n_trials and done:
            estimates.append(elapsed / done * max(0, n_trials - done))
        if self.description.timeout:
            estimates.append(max(0.0, self.description.timeout - elapsed))
        if estimates:
            text += f", about {format_seconds(min(estimates))} left"
        return text

    def _completed_word(self) -> str:
        """What a trial must be to be the best: ``completed``, or ``feasible`` under constraints."""
        return "feasible" if self.constraints else "completed"

    def _best(self) -> Optional[FrozenTrial]:
        complete = [
            t for t in self.trials
            if t.state == TrialState.COMPLETE and t.value is not None and self.constraints.is_feasible(t)
        ]
        if not complete:
            return None
        pick = max if self.description.direction == "maximize" else min
        return pick(complete, key=lambda t: t.value if t.value is not None and not math.isnan(t.value) else 0.0)


# --- Where the lines go -----------------------------------------------------------------------


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


# --- The watcher ------------------------------------------------------------------------------


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
        self.study = optuna.load_study(study_name=description.study_name, storage=description.storage)
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
            from allennlp_optuna.compat import storage_engine

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
            if plain and trial.number not in self.announced:
                self.announced.add(trial.number)
                self.output.line(self.view.started_line(trial))


# --- Where AllenNLP's and Optuna's logs go ----------------------------------------------------


class _Discard(io.TextIOBase):
    """A text stream that drops what it is given (AllenNLP's progress bars, in the quiet console)."""

    def write(self, text: str) -> int:
        return len(text)


class OncePerRun(logging.Filter):
    """Let each warning through once: every trial repeats the same ones (all stay in ``out.log``)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: Set[Tuple[str, int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.getMessage())
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
    from allennlp_optuna.compat import console_log_handlers_adjusted

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


def class_name(component: Any, default: str) -> str:
    """The class name of a sampler or pruner, or ``default`` when none was chosen."""
    return type(component).__name__ if component is not None else default


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


def next_commands(study_name: str, storage: str, config_file: str, report: str) -> List[str]:
    """The last lines ``allennlp tune`` prints: the report's path and the commands that use the study next."""
    study = f"--study-name {study_name} --storage {mask_password(storage)}"
    return [
        f"Report: {report}",
        f"Best values:  allennlp best-params {study}",
        f"Retrain best: allennlp retrain {config_file} -s best_model {study}",
        f"New report:   allennlp tune-report {study} -o report.html",
    ]
