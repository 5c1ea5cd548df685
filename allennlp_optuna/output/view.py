"""What the console shows about a study at one moment: the header, one line per started, finished and
running trial, the status line and the closing ``done`` line (:class:`StudyView`), all read from the
study's trials. Where the lines go is :mod:`allennlp_optuna.output.console`.
"""
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.core.redaction import redact_url
from allennlp_optuna.core.trial_attrs import FAIL_REASON_ATTR, SERIALIZATION_DIR_ATTR, VALUES_STD_ATTR
from allennlp_optuna.output.formatting import count_states, format_params, format_seconds, format_value, format_values
from allennlp_optuna.study.constraints import Constraints
from allennlp_optuna.study.objectives import Objectives
from allennlp_optuna.study.record import best_trial, pareto_front

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class StudyDescription:
    """What the console's header and closing lines say about a run.

    Args:
        study_name: the study's name.
        storage: the storage URL (printed with its password masked).
        objectives: the ``metrics.json`` keys the study optimizes, with their directions.
        sampler: the sampler's class name.
        pruner: the pruner's class name, and whether trials report to it.
        serialization_dir: the trials' parent directory.
        report: the report's path.
        n_trials: the trials this run starts (``None``: unbounded).
        timeout: seconds this run may start trials for (``None``: unbounded).
        n_workers: the worker processes running trials at once.
        constraints: the ``--constraint`` bounds (see :mod:`allennlp_optuna.study.constraints`).
    """

    study_name: str
    storage: str
    objectives: Objectives
    sampler: str
    pruner: str
    serialization_dir: str
    report: str
    n_trials: Optional[int] = None
    timeout: Optional[float] = None
    n_workers: int = 1
    constraints: Constraints = Constraints()

    def header(self) -> List[str]:
        """The lines printed before the first trial."""
        budget = [f"{self.n_trials} trials" if self.n_trials else "trials until stopped"]
        if self.timeout:
            budget.append(f"starting trials for {format_seconds(self.timeout)}")
        budget.append(f"{self.n_workers} worker{'s' if self.n_workers > 1 else ''}")
        return [
            f"Study {self.study_name!r} in {redact_url(self.storage)}: {self.objectives.describe()}"
            + (f" subject to {', '.join(self.constraints.texts)}" if self.constraints else ""),
            f"  sampler {self.sampler}, pruner {self.pruner}; {', '.join(budget)}",
            f"  trials in {os.path.join(self.serialization_dir, 'trial_N')} (AllenNLP's log: trial_N/out.log); "
            f"report {self.report}",
        ]


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


def finished_epochs(directory: str) -> List[int]:
    """The epochs whose ``metrics_epoch_N.json`` AllenNLP has written in ``directory`` (none if it does not exist)."""
    if not os.path.isdir(directory):
        return []
    names = [n[len("metrics_epoch_"):-len(".json")] for n in os.listdir(directory)
             if n.startswith("metrics_epoch_") and n.endswith(".json")]
    return sorted(int(n) for n in names if n.isdigit())


def read_json_object(path: str) -> Dict[str, Any]:
    """The JSON object in ``path``; empty when the file is missing, half written or not an object."""
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
    epochs = finished_epochs(directory) if directory else []
    if not epochs:
        return EpochProgress(0, total_epochs)
    value = read_json_object(os.path.join(directory, f"metrics_epoch_{max(epochs)}.json")).get(monitor)
    return EpochProgress(max(epochs) + 1, total_epochs, float(value) if isinstance(value, (int, float)) else None)


def configured_epochs(trial: FrozenTrial) -> Optional[int]:
    """``trainer.num_epochs`` of the config the trial trains with (its ``config.json``), if written yet."""
    directory = trial.user_attrs.get(SERIALIZATION_DIR_ATTR)
    if not directory:
        return None
    epochs = read_json_object(os.path.join(directory, "config.json")).get("trainer", {}).get("num_epochs")
    return epochs if isinstance(epochs, int) else None


def fail_summary(trial: FrozenTrial) -> str:
    """The last line of a failed trial's recorded reason (the exception), or ``"no reason recorded"``."""
    reason = str(trial.user_attrs.get(FAIL_REASON_ATTR, "")).strip()
    last = reason.splitlines()[-1].strip() if reason else "no reason recorded"
    return last if len(last) <= 160 else last[:157] + "..."  # the whole traceback is in the trial's attributes


def finish_order(trial: FrozenTrial) -> Tuple[float, int]:
    """Sort key of finished trials: when they finished, then their number."""
    return (trial.datetime_complete.timestamp() if trial.datetime_complete else 0.0, trial.number)


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
        if trial.state == TrialState.COMPLETE:
            violations = self.description.constraints.describe_violations(trial)
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
        if self.description.constraints:
            parts.append(f"{len(self.description.constraints.infeasible(self.trials))} infeasible")
        parts.append(self.best_text("best {value} (trial {number})", f"no {self._completed_word()} trial yet"))
        parts.append(self.time_text(now, done))
        return " | ".join(parts)

    def done_line(self, now: float) -> str:
        """The one line that says this run is done."""
        finished = self.finished()
        best_text = self.best_text(f"best {self.description.objectives.metrics}={{value}} (trial {{number}})",
                                   f"no {self._completed_word()} trial")
        states = count_states(finished) or "none finished"
        if self.description.constraints:
            states += f", {len(self.description.constraints.infeasible(finished))} infeasible"
        return f"done: {len(finished)} trials in {format_seconds(now - self.started)} ({states}); {best_text}"

    def values_text(self, trial: FrozenTrial) -> str:
        """``metric=0.8421``; with several objectives (or repeats) :func:`~allennlp_optuna.study.objectives.format_values`."""
        keys = self.description.objectives.keys
        std = trial.user_attrs.get(VALUES_STD_ATTR)
        if len(keys) == 1 and std is None:
            return f"{keys[0]}={format_value(trial.values[0] if trial.values else None)}"
        return format_values(keys, trial.values, std)

    def best_text(self, template: str, nothing: str) -> str:
        """``template`` filled with the best trial's value and number; the Pareto front with several objectives."""
        if self.description.objectives.is_multi:
            front = pareto_front(self.trials, self.description.objectives, self.description.constraints)
            return f"Pareto front: trials {', '.join(str(t.number) for t in front)}" if front else nothing
        best = best_trial(self.trials, self.description.objectives, self.description.constraints)
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
        return "feasible" if self.description.constraints else "completed"
