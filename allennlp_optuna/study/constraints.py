"""Constraints on metrics a study does not optimize: ``--constraint 'peak_worker_0_memory_MB<=2000'``.

A constraint is ``KEY<=NUMBER`` or ``KEY>=NUMBER``; ``KEY`` is read from each trial's
``metrics.json`` as ``--metrics`` keys are (numbers, ``H:MM:SS`` durations as seconds, and
``num_parameters``, see :mod:`allennlp_optuna.study.objectives`). When a trial has trained, each
constraint's *violation* is recorded with Optuna's constraint support: ``value - bound`` for
``<=``, ``bound - value`` for ``>=``. A trial is *feasible* when every violation is zero or less,
as Optuna counts it: samplers that model constraints (TPE, NSGA-II, GP) steer away from
infeasible trials, and the study's best trial (its Pareto front with several objectives) is
chosen among the feasible ones only. How each Optuna version is told is in
:func:`allennlp_optuna.core.compat.record_trial_constraints`.

The measured values are kept in each trial's
:data:`~allennlp_optuna.core.trial_attrs.CONSTRAINT_VALUES_ATTR` user attribute and the constraints in
the study's :data:`~allennlp_optuna.core.trial_attrs.CONSTRAINTS_ATTR`, so that ``best-params``,
``retrain`` and the report read them back whatever the Optuna version. A pruned or failed trial
has no ``metrics.json`` and no constraint values; like Optuna, this module counts it feasible,
and it is never a best trial anyway (only COMPLETE trials are).

This module imports neither torch nor AllenNLP, so summaries and reports can use it.
"""
import math
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import optuna
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.core.trial_attrs import CONSTRAINT_VALUES_ATTR

LESS_OR_EQUAL = "<="
_CONSTRAINT = re.compile(r"^\s*(?P<key>[^<>=\s](?:[^<>=]*[^<>=\s])?)\s*(?P<operator><=|>=)\s*(?P<bound>\S+)\s*$")


class ConstraintError(ValueError):
    """A malformed ``--constraint`` (the caller turns it into a ``ConfigurationError``)."""


def _number_text(number: float) -> str:
    """``2000`` for 2000.0, ``0.5`` for 0.5: the bound as a user would write it."""
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


@dataclass(frozen=True)
class Constraint:
    """One bound on a ``metrics.json`` key.

    Args:
        key: the ``metrics.json`` key, e.g. ``"peak_worker_0_memory_MB"``.
        operator: ``"<="`` (at most ``bound``) or ``">="`` (at least ``bound``).
        bound: the number the key's value is held to.
    """

    key: str
    operator: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> "Constraint":
        """``"num_parameters<=5000"`` → ``Constraint("num_parameters", "<=", 5000.0)``.

        Example::

            >>> Constraint.parse("peak_worker_0_memory_MB <= 2e3").text
            'peak_worker_0_memory_MB<=2000'
        """
        match = _CONSTRAINT.match(text)
        if match is None:
            raise ConstraintError(f"--constraint must look like KEY<=NUMBER or KEY>=NUMBER, got {text!r}")
        try:
            bound = float(match.group("bound"))
        except ValueError:
            bound = math.nan
        if not math.isfinite(bound):
            raise ConstraintError(
                f"--constraint {text!r}: the bound must be a finite number, got {match.group('bound')!r}"
            )
        return cls(match.group("key"), match.group("operator"), bound)

    @property
    def text(self) -> str:
        """The constraint as ``--constraint`` takes it, e.g. ``"num_parameters<=5000"``; also its name in Optuna."""
        return f"{self.key}{self.operator}{_number_text(self.bound)}"

    def violation(self, value: float) -> float:
        """How far ``value`` is beyond the bound: positive when violated, zero or less when satisfied.

        Example::

            >>> Constraint.parse("num_parameters<=5000").violation(5120), Constraint.parse("x>=0.5").violation(0.75)
            (120.0, -0.25)
        """
        return value - self.bound if self.operator == LESS_OR_EQUAL else self.bound - value


@dataclass(frozen=True)
class Constraints:
    """The constraints of a study, in the order they were given (possibly none).

    Args:
        items: the constraints.
    """

    items: Tuple[Constraint, ...] = ()

    @classmethod
    def parse(cls, texts: Union[None, str, Sequence[str]]) -> "Constraints":
        """From ``--constraint`` values (one string or several); one :class:`ConstraintError` for the first bad one."""
        if texts is None:
            return cls()
        items = tuple(Constraint.parse(text) for text in ([texts] if isinstance(texts, str) else texts))
        seen = [c.text for c in items]
        twice = next((text for i, text in enumerate(seen) if text in seen[:i]), None)
        if twice is not None:
            raise ConstraintError(f"--constraint {twice} is given twice")
        return cls(items)

    def __bool__(self) -> bool:
        return bool(self.items)

    @property
    def texts(self) -> List[str]:
        """Each constraint as ``--constraint`` takes it: the study attribute's value."""
        return [c.text for c in self.items]

    @property
    def keys(self) -> List[str]:
        """The ``metrics.json`` keys the constraints read, each once, in order."""
        return list(dict.fromkeys(c.key for c in self.items))

    def flags(self) -> str:
        """``--constraint a<=1 --constraint b>=2``, or ``no --constraint``."""
        return " ".join(f"--constraint {text}" for text in self.texts) or "no --constraint"

    def violations(self, values: Mapping[str, float]) -> Dict[str, float]:
        """Each constraint's violation (by its :attr:`~Constraint.text`) for the keys' ``values``."""
        return {c.text: c.violation(float(values[c.key])) for c in self.items}

    def trial_values(self, trial: FrozenTrial) -> Optional[Dict[str, float]]:
        """The values of the keys that ``trial`` recorded, or ``None`` when it recorded none (not COMPLETE)."""
        values = trial.user_attrs.get(CONSTRAINT_VALUES_ATTR)
        return dict(values) if isinstance(values, dict) and all(k in values for k in self.keys) else None

    def trial_violations(self, trial: FrozenTrial) -> Optional[Dict[str, float]]:
        """The violations of ``trial`` (see :meth:`violations`), or ``None`` when it recorded no values."""
        values = self.trial_values(trial)
        return None if values is None or not self else self.violations(values)

    def is_feasible(self, trial: FrozenTrial) -> bool:
        """Whether ``trial`` satisfies every constraint; a trial with no values counts as feasible, as in Optuna."""
        violations = self.trial_violations(trial) or {}
        return all(v <= 0 for v in violations.values())

    def feasibility(self, trial: FrozenTrial) -> Optional[bool]:
        """:meth:`is_feasible` for a trial that recorded values; ``None`` for one that did not (or no constraints)."""
        return None if self.trial_violations(trial) is None else self.is_feasible(trial)

    def infeasible(self, trials: Sequence[FrozenTrial]) -> List[FrozenTrial]:
        """The COMPLETE trials among ``trials`` that violate a constraint."""
        return [t for t in trials if t.state == TrialState.COMPLETE and not self.is_feasible(t)]

    def describe_violations(self, trial: FrozenTrial) -> str:
        """``"num_parameters=5120 violates num_parameters<=5000"`` (each violated constraint; empty if none)."""
        values, violations = self.trial_values(trial), self.trial_violations(trial)
        if values is None or violations is None:
            return ""
        return ", ".join(f"{c.key}={values[c.key]:.6g} violates {c.text}" for c in self.items if violations[c.text] > 0)


def infeasible_note(constraints: Constraints, trials: Sequence[FrozenTrial]) -> Optional[str]:
    """One line on the completed trials that violate ``constraints``; ``None`` without constraints.

    Example: ``"Constraints num_parameters<=5000: 2 of 4 completed trials are infeasible (1, 3) and not
    considered"``.
    """
    if not constraints:
        return None
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    infeasible = constraints.infeasible(trials)
    plural = "" if len(complete) == 1 else "s"
    text = f"Constraint{'' if len(constraints.items) == 1 else 's'} {', '.join(constraints.texts)}: "
    if not infeasible:
        return text + f"all {len(complete)} completed trial{plural} feasible"
    numbers = ", ".join(str(t.number) for t in infeasible)
    verb = "is" if len(infeasible) == 1 else "are"
    return text + (
        f"{len(infeasible)} of {len(complete)} completed trial{plural} {verb} infeasible ({numbers}) and not considered"
    )


def record_constraints(trial: optuna.Trial, constraints: Constraints, values: Mapping[str, float]) -> Dict[str, float]:
    """Record the keys' ``values`` on ``trial`` and tell Optuna each constraint's violation.

    Returns:
        The violations, by constraint.
    """
    from allennlp_optuna.core.compat import record_trial_constraints

    trial.set_user_attr(CONSTRAINT_VALUES_ATTR, {key: float(values[key]) for key in constraints.keys})
    violations = constraints.violations(values)
    record_trial_constraints(trial, violations)
    return violations


@dataclass(frozen=True)
class ConstraintViolations:
    """A sampler's ``constraints_func`` (Optuna 3 and 4): a trial's recorded violations, in order.

    Picklable, so that worker processes get it with their sampler. A trial without values (a
    pruned one) gets zeros: Optuna 3 and 4's samplers need a value for every finished trial.

    Args:
        texts: the study's constraints, as :attr:`Constraints.texts`.
    """

    texts: Tuple[str, ...]

    def __call__(self, trial: FrozenTrial) -> List[float]:
        violations = Constraints.parse(self.texts).trial_violations(trial)
        return [0.0] * len(self.texts) if violations is None else [violations[t] for t in self.texts]

