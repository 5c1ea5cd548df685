"""The best trial of a study: its values in each output format, and its plain-JSON config.

The guide's ``dump_best_config`` works with only its import changed::

    from allennlp_optuna import dump_best_config

    study = optuna.load_study(storage="sqlite:///result/trial.db", study_name="optuna_allennlp")
    dump_best_config("./imdb_optuna.jsonnet", "./best_config.json", study)

``best_config.json`` has every ``std.extVar`` resolved and no ``optuna_pruner`` callback,
so ``allennlp train best_config.json -s DIR`` trains it directly.
"""
import json
import logging
import os
import shlex
from typing import Any, Dict, Mapping, Optional, Union

import optuna
from allennlp.common.checks import ConfigurationError
from allennlp.models.archival import CONFIG_NAME, archive_model
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.config import ext_var_value, resolved_config, write_config
from allennlp_optuna.constraints import Constraints, infeasible_note
from allennlp_optuna.objectives import (
    format_values,
    is_multi_objective,
    objective_values_record,
    pareto_front,
    study_objectives,
)
from allennlp_optuna.search_space import ParamValue
from allennlp_optuna.summary import best_trial, count_states, format_params
from allennlp_optuna.trial_attrs import ARCHIVE_FILE, METRIC_ATTR, RUNS_ATTR, SERIALIZATION_DIR_ATTR

logger = logging.getLogger(__name__)

FORMATS = ("plain", "json", "shell")
"""Output formats of ``allennlp best-params``; ``plain`` is the older plugin's ``name=value`` line."""


def require_best_trial(study: optuna.Study) -> FrozenTrial:
    """The study's best COMPLETE trial; a ``ConfigurationError`` when none has completed.

    A multi-objective study has no single best trial: the error lists its Pareto front, to
    choose one with ``--trial``. In a study with ``--constraint`` bounds the best trial is the best
    feasible one; when every completed trial violates a bound, the error says so.
    """
    if is_multi_objective(study):
        front = ", ".join(str(t.number) for t in pareto_front(study)) or "none yet"
        raise ConfigurationError(
            f"study {study.study_name!r} has {len(study.directions)} objectives and no single best trial; "
            f"choose one of its Pareto front ({front}) with --trial"
        )
    trial = best_trial(study)
    if trial is None:
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        if complete:  # but none feasible
            texts = Constraints.of_study(study).texts
            n = len(complete)
            subject = "its one COMPLETE trial violates" if n == 1 else f"all {n} of its COMPLETE trials violate"
            bounds = texts[0] if len(texts) == 1 else f"one of {', '.join(texts)}"
            raise ConfigurationError(
                f"study {study.study_name!r} has no feasible trial: {subject} {bounds}; choose one with --trial"
            )
        states = f": {count_states(trials)}" if trials else ""
        plural = "" if len(trials) == 1 else "s"
        raise ConfigurationError(
            f"study {study.study_name!r} has no COMPLETE trial yet ({len(trials)} trial{plural}{states}); "
            "run allennlp tune until a trial completes"
        )
    return trial


def format_best_params(params: Mapping[str, ParamValue], output_format: str = "plain") -> str:
    """Hyperparameter values as ``allennlp best-params`` prints them.

    Args:
        params: e.g. ``study.best_params``.
        output_format: ``"plain"``: ``name=value`` pairs on one line, as the older plugin printed;
            ``"json"``: a JSON object with the values' own types;
            ``"shell"``: one ``export name=value`` line per value, quoted for the shell, so that
            ``eval "$(allennlp best-params --format shell)"`` lets ``allennlp train`` read them
            with ``std.extVar`` exactly as the trial did.

    Example::

        >>> print(format_best_params({"lr": 0.01, "optimizer": "adam"}, "shell"))
        export lr=0.01
        export optimizer=adam
    """
    if output_format == "plain":
        return format_params(dict(params))
    if output_format == "json":
        return json.dumps(dict(params))
    if output_format == "shell":
        return "\n".join(f"export {name}={shlex.quote(ext_var_value(value))}" for name, value in params.items())
    raise ConfigurationError(f"unknown output format {output_format!r}; use one of {', '.join(FORMATS)}")


def describe_trial(study: optuna.Study, trial: FrozenTrial) -> str:
    """One line naming a trial: its number, value(s) and serialization directory."""
    metric = study.user_attrs.get(METRIC_ATTR, "value")
    directory = trial.user_attrs.get(SERIALIZATION_DIR_ATTR, "(unknown)")
    violations = Constraints.of_study(study).describe_violations(trial)
    where = f"directory {directory}" + (f"; infeasible: {violations}" if violations else "")
    if is_multi_objective(study):
        values = format_values(study_objectives(study, metric).keys, trial.values) or "no values"
        return f"trial {trial.number} of study {study.study_name!r}: {values}, {where}"
    return f"trial {trial.number} of study {study.study_name!r}: {metric} = {trial.value}, {where}"


def constraints_note(study: optuna.Study) -> Optional[str]:
    """How many completed trials violate the study's ``--constraint`` bounds (``None`` without bounds):
    ``best-params`` prints it before the best trial or the Pareto front, which leave them out."""
    return infeasible_note(Constraints.of_study(study), study.get_trials(deepcopy=False))


def format_pareto_front(study: optuna.Study, output_format: str = "plain") -> str:
    """The Pareto front of a multi-objective study as ``allennlp best-params`` prints it.

    ``"plain"``: a table, one trial a row (number, each objective, params); ``"json"``: a list of
    ``{"number", "values", "params"}``, with ``"constraint_values"`` (the constrained keys' values)
    in a study with ``--constraint`` bounds. ``"shell"`` needs one trial (``--trial``). Only
    feasible trials are on the front of a study with constraints.
    """
    front = pareto_front(study)
    if output_format == "json":
        constraints = Constraints.of_study(study)
        records = [objective_values_record(t) for t in front]
        if constraints:
            for record, trial in zip(records, front):
                record["constraint_values"] = constraints.trial_values(trial)
        return json.dumps(records)
    if output_format != "plain":
        raise ConfigurationError(
            f"--format {output_format} prints one trial's values; choose one of the Pareto front "
            f"({', '.join(str(t.number) for t in front)}) with --trial"
        )
    keys = list(study_objectives(study, study.user_attrs.get(METRIC_ATTR)).keys)
    rows = [["trial", *keys, "params"]]
    rows += [[str(t.number), *(f"{v:.6g}" for v in t.values), format_params(t.params)] for t in front]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(row, widths)), row[-1]]).rstrip() for row in rows)


def best_config(
    config_file: str, study: optuna.Study, overrides: Union[str, Dict[str, Any]] = ""
) -> Dict[str, Any]:
    """The best trial's training config as a plain dict (see :func:`dump_best_config`)."""
    return resolved_config(config_file, require_best_trial(study).params, overrides)


def dump_best_config(
    input_config: str,
    output_config: str,
    study: optuna.Study,
    overrides: Union[str, Dict[str, Any]] = "",
) -> None:
    """Write the config of the study's best trial as JSON that ``allennlp train`` accepts.

    Args:
        input_config: the Jsonnet config the trials trained with (reading ``std.extVar``).
        output_config: the JSON file to write.
        study: a study with at least one COMPLETE trial.
        overrides: a JSON string or dict applied as ``allennlp train -o`` would; pass the
            overrides the trials trained with to reproduce them.
    """
    write_config(best_config(input_config, study, overrides), output_config)


def archive_best_trial(study: optuna.Study) -> Optional[str]:
    """Write the best trial's ``model.tar.gz`` as ``allennlp train`` would have, if it has none.

    Nothing happens when no trial has completed (or, under ``--constraint`` bounds, none
    satisfies them), the study has several objectives (no single best trial) or the best trial's
    directory is not on this machine. A repeated trial's first
    run is archived. The archive is written under a temporary name and renamed, so a reader (or another
    worker archiving the same trial) never sees half of one.

    Returns:
        The archive's path, or ``None``.
    """
    trial = best_trial(study)
    if trial is None:
        if Constraints.of_study(study):
            logger.info("No completed trial of study %r satisfies its constraints: none archived.", study.study_name)
        return None
    directory = str(trial.user_attrs.get(SERIALIZATION_DIR_ATTR, ""))
    runs = trial.user_attrs.get(RUNS_ATTR)
    if runs:  # a repeated trial (--seeds, --repeat): its first run, as retrain reproduces it
        directory = os.path.join(directory, runs[0]["run"])
    config = os.path.join(directory, CONFIG_NAME)
    path = os.path.join(directory, ARCHIVE_FILE)
    if os.path.exists(path):
        return path
    if not os.path.isfile(config):  # the trial trained on another machine
        return None
    with open(config, encoding="utf-8") as file:
        include_in_archive = json.load(file).get("include_in_archive")
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        archive_model(directory, archive_path=temporary, include_in_archive=include_in_archive)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    logger.info("Archived the best trial, %d: %s", trial.number, path)
    return path
