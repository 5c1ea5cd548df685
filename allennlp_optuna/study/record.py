"""What a stored study says about itself, read once, and the one rule for its best trial.

``allennlp tune`` records what it optimized in the study's user attributes (the ``--metrics`` keys,
the ``--constraint`` bounds, the ``--seeds``/``--repeat`` plan, the config). Everything that reads
a finished or running study (``best-params``, ``retrain``, ``tune-report``, the summary, the
archive of the best trial) reads them through :class:`StoredStudy`, parsed once into typed values.

The best trial is chosen by :func:`best_trial` everywhere (the console, the summary,
``best-params``, ``retrain``, the report and the archive): the best value among the COMPLETE
trials whose values are all numbers (never NaN) and that satisfy the study's constraints; of equal
values the earliest trial. Pruned, failed and infeasible trials are never the best. With several
objectives there is no single best trial but the Pareto front (:func:`pareto_front`), chosen among
the same trials.

This module imports neither torch nor AllenNLP's trainer, so summaries and reports can use it.
"""
import math
import os
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.core.trial_attrs import (
    CONFIG_ATTR,
    CONSTRAINTS_ATTR,
    FAIL_REASON_ATTR,
    METRIC_ATTR,
    REPEATS_ATTR,
    SAMPLING_ATTR,
    SERIALIZATION_DIR_ATTR,
    STUDY_ERROR_ATTR,
)
from allennlp_optuna.study.constraints import Constraints
from allennlp_optuna.study.objectives import Objectives, non_dominated, split_keys
from allennlp_optuna.study.repeats import RepeatPlan


def candidates(trials: Sequence[FrozenTrial], constraints: Constraints) -> List[FrozenTrial]:
    """The trials that may be the best or on the Pareto front: COMPLETE, every value a number (not NaN), feasible."""
    return [
        t for t in trials
        if t.state == TrialState.COMPLETE and t.values is not None
        and not any(math.isnan(v) for v in t.values) and constraints.is_feasible(t)
    ]


def failure_line(trial: FrozenTrial) -> str:
    """Why a FAIL trial failed, in one line: the study-wide error's message, or the last line of its
    ``fail_reason`` traceback (an AllenNLP error's message without its class, as the commands print it)."""
    if STUDY_ERROR_ATTR in trial.user_attrs:
        return str(trial.user_attrs[STUDY_ERROR_ATTR])
    reason = str(trial.user_attrs.get(FAIL_REASON_ATTR, "")).strip()
    last_line = reason.splitlines()[-1] if reason else "a worker stopped on a configuration error"
    return last_line.split(": ", 1)[-1] if last_line.startswith("allennlp.") else last_line


def best_trial(trials: Sequence[FrozenTrial], objectives: Objectives, constraints: Constraints) -> Optional[FrozenTrial]:
    """The best of :func:`candidates` for a single-objective study (of equal values, the earliest); ``None`` when
    there is none or the study has several objectives.

    Example::

        >>> best = best_trial(study.trials, Objectives.parse("best_validation_accuracy"), Constraints())
    """
    if objectives.is_multi:
        return None
    eligible = sorted(candidates(trials, constraints), key=lambda t: t.number)
    if not eligible:
        return None
    pick = max if objectives.directions[0] == "maximize" else min
    return pick(eligible, key=lambda t: t.values[0])


def pareto_front(trials: Sequence[FrozenTrial], objectives: Objectives, constraints: Constraints) -> List[FrozenTrial]:
    """The :func:`candidates` no other candidate dominates, by number."""
    front = non_dominated(candidates(trials, constraints), objectives.directions)
    return sorted(front, key=lambda t: t.number)


@dataclass(frozen=True)
class StoredStudy:
    """A study as ``allennlp tune`` recorded it: its trials' objectives, constraints, repeats and config.

    Args:
        study: the Optuna study.
        objectives: its keys (``value``, or ``value_0``, ``value_1``... when it recorded none) and directions.
        constraints: its ``--constraint`` bounds (none when it recorded none).
        repeats: how each trial was repeated (``--seeds``, ``--repeat``).
        config_file: the config its trials trained with, if recorded.
        sampling: the sampler and pruner of its latest run, if recorded (``{"sampler", "pruner", "defaults"}``).
    """

    study: optuna.Study
    objectives: Objectives
    constraints: Constraints
    repeats: RepeatPlan
    config_file: Optional[str] = None
    sampling: Optional[Mapping[str, Any]] = None

    @classmethod
    def read(cls, study: optuna.Study) -> "StoredStudy":
        """Read what ``study`` recorded about itself (its user attributes and directions)."""
        attrs = study.user_attrs
        directions = tuple(d.name.lower() for d in study.directions)
        keys = split_keys(attrs.get(METRIC_ATTR) or "")
        if len(keys) != len(directions):
            keys = [f"value_{i}" for i in range(len(directions))] if len(directions) > 1 else ["value"]
        return cls(
            study,
            Objectives(tuple(keys), directions),
            Constraints.parse(attrs.get(CONSTRAINTS_ATTR) or ()),
            RepeatPlan.from_attr(attrs.get(REPEATS_ATTR)),
            attrs.get(CONFIG_ATTR),
            attrs.get(SAMPLING_ATTR),
        )

    @property
    def name(self) -> str:
        """The study's name."""
        return self.study.study_name

    @property
    def is_multi(self) -> bool:
        """Whether the study has several objectives (a Pareto front, no single best trial)."""
        return self.objectives.is_multi

    def results_directory(self) -> Optional[str]:
        """The directory holding the trials' ``trial_N`` directories (the latest run's ``--serialization-dir``),
        where ``tune`` keeps the report; ``None`` before any trial recorded its directory."""
        directories = [t.user_attrs[SERIALIZATION_DIR_ATTR] for t in self.trials() if SERIALIZATION_DIR_ATTR in t.user_attrs]
        return os.path.dirname(str(directories[-1])) if directories else None

    def trials(self) -> List[FrozenTrial]:
        """The study's trials as they are now, by number (not copied: do not change them)."""
        return self.study.get_trials(deepcopy=False)

    def best_trial(self, trials: Optional[Sequence[FrozenTrial]] = None) -> Optional[FrozenTrial]:
        """:func:`best_trial` of ``trials`` (default: the study's)."""
        return best_trial(self.trials() if trials is None else trials, self.objectives, self.constraints)

    def pareto_front(self, trials: Optional[Sequence[FrozenTrial]] = None) -> List[FrozenTrial]:
        """:func:`pareto_front` of ``trials`` (default: the study's)."""
        return pareto_front(self.trials() if trials is None else trials, self.objectives, self.constraints)
