"""The end of ``allennlp tune``: the study's summary (trials by state, the best trial or the Pareto front)
and the commands that use the study next."""
import json
import os
import shlex
import shutil
import sys
from typing import Any, List, Mapping, Optional, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.core.redaction import redact_url
from allennlp_optuna.core.trial_attrs import REPORT_FILE, SERIALIZATION_DIR_ATTR, VALUES_STD_ATTR
from allennlp_optuna.output.formatting import count_states, format_params, format_values
from allennlp_optuna.study.constraints import infeasible_note
from allennlp_optuna.study.record import StoredStudy
from allennlp_optuna.study.settings import TuneSettings


def summarize(study: optuna.Study, trials: Optional[Sequence[FrozenTrial]] = None) -> str:
    """A few lines describing the study, as printed at the end of ``allennlp tune``.

    Args:
        study: the study.
        trials: its trials, if the caller has just read them.
    """
    return "\n".join(summary_lines(StoredStudy.read(study), trials))


def summary_lines(stored: StoredStudy, trials: Optional[Sequence[FrozenTrial]] = None) -> List[str]:
    """:func:`summarize`'s lines, for a study already read (the report shows them as a list)."""
    trials = stored.trials() if trials is None else trials
    lines: List[str] = [
        f"Study {stored.name!r} ({_objectives_text(stored)}): {len(trials)} trials: {count_states(trials) or 'none'}"
    ]
    sampling = sampling_text(stored.sampling)
    if sampling is not None:
        lines.append(sampling)
    note = infeasible_note(stored.constraints, trials)
    if note is not None:
        lines.append(note)
    lines += _pareto_front_lines(stored, trials) if stored.is_multi else _best_trial_lines(stored, trials)
    return lines


def sampling_text(recorded: Optional[Mapping[str, Any]]) -> Optional[str]:
    """``Sampler TPESampler, pruner MedianPruner (allennlp-optuna's defaults)``: what the study recorded
    (:meth:`~allennlp_optuna.study.samplers.OptunaSettings.describe`); ``None`` for a study that recorded nothing."""
    if not recorded:
        return None
    defaults = list(recorded.get("defaults") or [])
    note = ""
    if len(defaults) == 1:
        note = f" ({defaults[0]}: allennlp-optuna's default)"
    elif defaults:
        note = " (allennlp-optuna's defaults)"
    return f"Sampler {recorded.get('sampler')}, pruner {recorded.get('pruner')}{note}"


def _objectives_text(stored: StoredStudy) -> str:
    """``maximize best_validation_accuracy``; several objectives each with its direction."""
    if stored.is_multi:
        return stored.objectives.describe()
    return f"{stored.objectives.directions[0]} {stored.objectives.metrics}"


def _nothing_yet(trials: Sequence[FrozenTrial]) -> str:
    complete = any(t.state == TrialState.COMPLETE for t in trials)
    return "No completed trial satisfies the constraints." if complete else "No trial has completed yet."


def _best_trial_lines(stored: StoredStudy, trials: Sequence[FrozenTrial]) -> List[str]:
    best = stored.best_trial(trials)
    if best is None:
        return [_nothing_yet(trials)]
    return [
        f"Best trial: {best.number}, {stored.objectives.metrics} = {best.value}",
        f"Best params: {format_params(best.params)}",
        f"Best trial's directory: {best.user_attrs.get(SERIALIZATION_DIR_ATTR, '(unknown)')}",
    ]


def _pareto_front_lines(stored: StoredStudy, trials: Sequence[FrozenTrial]) -> List[str]:
    front = stored.pareto_front(trials)
    if not front:
        return [_nothing_yet(trials)]
    lines = [f"Pareto front: {len(front)} trial{'' if len(front) == 1 else 's'} (allennlp best-params lists them)"]
    for trial in front:
        values = format_values(stored.objectives.keys, trial.values, trial.user_attrs.get(VALUES_STD_ATTR))
        lines.append(f"  trial {trial.number}: {values} | {format_params(trial.params)}")
    return lines


def next_commands(settings: TuneSettings) -> List[str]:
    """The last lines ``allennlp tune`` prints: the report's path and the commands that use the study next.

    Each works pasted as it is into a new shell: it first changes to this directory (where
    ``.allennlp_plugins`` names the plugin, and relative paths mean what they meant to ``tune``),
    then runs the ``allennlp`` of this installation (see :func:`allennlp_command`). A password in the
    storage URL is shown as ``***``: put it back in before running the command. ``retrain`` gets the
    ``-o`` and ``--include-package`` the trials trained with, so that it trains what they trained.
    """
    training = settings.training
    study = f"--study-name {shlex.quote(settings.study_name)} --storage {shlex.quote(redact_url(settings.storage))}"
    here = f"cd {shlex.quote(os.getcwd())} && {allennlp_command()}"
    retrain_dir = shlex.quote(os.path.join(settings.serialization_dir, "best_model"))
    overrides = training.overrides if isinstance(training.overrides, str) else json.dumps(training.overrides)
    extra = ([f"-o {shlex.quote(overrides)}"] if overrides.strip() else [])
    extra += [f"--include-package {shlex.quote(package)}" for package in training.include_package]
    return [
        f"Report: {os.path.abspath(os.path.join(settings.serialization_dir, REPORT_FILE))}",
        f"Best values:  {here} best-params {study}",
        f"Retrain best: {here} retrain {shlex.quote(training.config_file)} -s {retrain_dir} {' '.join([study, *extra])}",
        f"New report:   {here} tune-report {study}",
    ]


def allennlp_command() -> str:
    """How a new shell runs this installation's ``allennlp``: ``allennlp`` when the shell's ``PATH`` finds
    this one (an activated virtualenv), else its absolute path, else ``PYTHON -m allennlp``."""
    here = os.path.join(os.path.dirname(sys.executable), "allennlp")
    if not os.access(here, os.X_OK):
        return f"{shlex.quote(sys.executable)} -m allennlp"
    found = shutil.which("allennlp")
    return "allennlp" if found and os.path.realpath(found) == os.path.realpath(here) else shlex.quote(here)
