"""What ``allennlp best-params`` prints: a trial's values in each output format, or a Pareto front."""
import json
import shlex
from typing import Any, Dict, Mapping, Optional

from allennlp.common.checks import ConfigurationError
from optuna.trial import FrozenTrial

from allennlp_optuna.core.trial_attrs import SERIALIZATION_DIR_ATTR
from allennlp_optuna.output.formatting import format_params, format_values
from allennlp_optuna.study.config import ext_var_value
from allennlp_optuna.study.constraints import infeasible_note
from allennlp_optuna.study.record import StoredStudy
from allennlp_optuna.study.search_space import ParamValue

FORMATS = ("plain", "json", "shell")
"""Output formats of ``allennlp best-params``; ``plain`` is the older plugin's ``name=value`` line."""


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


def describe_trial(stored: StoredStudy, trial: FrozenTrial) -> str:
    """One line naming a trial: its number, value(s) and serialization directory."""
    directory = trial.user_attrs.get(SERIALIZATION_DIR_ATTR, "(unknown)")
    violations = stored.constraints.describe_violations(trial)
    where = f"directory {directory}" + (f"; infeasible: {violations}" if violations else "")
    if stored.is_multi:
        values = format_values(stored.objectives.keys, trial.values) or "no values"
        return f"trial {trial.number} of study {stored.name!r}: {values}, {where}"
    return f"trial {trial.number} of study {stored.name!r}: {stored.objectives.metrics} = {trial.value}, {where}"


def constraints_note(stored: StoredStudy) -> Optional[str]:
    """How many completed trials violate the study's ``--constraint`` bounds (``None`` without bounds):
    ``best-params`` prints it before the best trial or the Pareto front, which leave them out."""
    return infeasible_note(stored.constraints, stored.trials())


def objective_values_record(trial: FrozenTrial) -> Dict[str, Any]:
    """``{"number", "values", "params"}``: one Pareto-front trial as ``best-params --format json`` prints it."""
    return {"number": trial.number, "values": list(trial.values or []), "params": dict(trial.params)}


def format_pareto_front(stored: StoredStudy, output_format: str = "plain") -> str:
    """The Pareto front of a multi-objective study as ``allennlp best-params`` prints it.

    ``"plain"``: a table, one trial a row (number, each objective, params); ``"json"``: a list of
    ``{"number", "values", "params"}``, with ``"constraint_values"`` (the constrained keys' values)
    in a study with ``--constraint`` bounds. ``"shell"`` needs one trial (``--trial``). Only
    feasible trials are on the front of a study with constraints.
    """
    front = stored.pareto_front()
    if output_format == "json":
        records = [objective_values_record(t) for t in front]
        if stored.constraints:
            for record, trial in zip(records, front):
                record["constraint_values"] = stored.constraints.trial_values(trial)
        return json.dumps(records)
    if output_format != "plain":
        raise ConfigurationError(
            f"--format {output_format} prints one trial's values; choose one of the Pareto front "
            f"({', '.join(str(t.number) for t in front)}) with --trial"
        )
    rows = [["trial", *stored.objectives.keys, "params"]]
    rows += [[str(t.number), *(f"{v:.6g}" for v in t.values), format_params(t.params)] for t in front]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(row, widths)), row[-1]]).rstrip() for row in rows)
