"""The study-level progress line ``allennlp tune`` prints after every trial.

AllenNLP's bars show the epochs of one trial; this line shows the study::

    tune: trial 3 of 10 finished (#2 COMPLETE, best_validation_accuracy=0.825) | best 0.85 (trial 0) |
    3 COMPLETE | 41s elapsed, about 1m36s left
"""
import sys
import time
from typing import Optional, TextIO

import optuna
from optuna.trial import FrozenTrial

from allennlp_optuna.objectives import format_values, is_multi_objective, pareto_front, split_keys
from allennlp_optuna.summary import best_trial, count_states
from allennlp_optuna.trial_attrs import VALUES_STD_ATTR


def format_seconds(seconds: float) -> str:
    """``"1h02m"``, ``"3m05s"`` or ``"42s"``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


class ProgressLine:
    """An Optuna study callback printing one line per finished trial.

    Args:
        n_trials: the trials this ``tune`` call runs (``None``: unbounded).
        timeout: the seconds this ``tune`` call may start trials for (``None``: unbounded).
        metric: the name of the objective, for the line.
        stream: where to print (default: standard error, beside AllenNLP's bars).
    """

    def __init__(
        self,
        n_trials: Optional[int] = None,
        timeout: Optional[float] = None,
        metric: str = "value",
        stream: Optional[TextIO] = None,
    ) -> None:
        self.n_trials = n_trials
        self.timeout = timeout
        self.metric = metric
        self.stream = stream
        self.started = time.monotonic()
        self.finished = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.finished += 1
        print(self.line(study, trial, time.monotonic() - self.started), file=self.stream or sys.stderr, flush=True)

    def line(self, study: optuna.Study, trial: FrozenTrial, elapsed: float) -> str:
        """The line for ``trial``, the ``self.finished``-th trial of this call, after ``elapsed`` seconds."""
        count = f"trial {self.finished} of {self.n_trials}" if self.n_trials else f"trial {self.finished}"
        outcome = f"#{trial.number} {trial.state.name}"
        if trial.values is not None:
            outcome += ", " + format_values(split_keys(self.metric), trial.values, trial.user_attrs.get(VALUES_STD_ATTR))
        if is_multi_objective(study):
            front = pareto_front(study, study.get_trials(deepcopy=False))
            best_text = f"Pareto front: trials {', '.join(str(t.number) for t in front)}" if front else "no completed trial yet"
        else:
            best = best_trial(study)
            best_text = "no completed trial yet" if best is None else f"best {best.value:.6g} (trial {best.number})"
        states = count_states(study.get_trials(deepcopy=False))
        return f"tune: {count} finished ({outcome}) | {best_text} | {states} | {self.time_text(elapsed)}"

    def time_text(self, elapsed: float) -> str:
        """Elapsed time, and the time left when ``n_trials`` or ``timeout`` bounds the call."""
        estimates = []
        if self.n_trials:
            if self.finished >= self.n_trials:
                return f"{format_seconds(elapsed)} elapsed, done"
            estimates.append(elapsed / self.finished * (self.n_trials - self.finished))
        if self.timeout:
            estimates.append(self.timeout - elapsed)
        text = f"{format_seconds(elapsed)} elapsed"
        if estimates:
            text += f", about {format_seconds(max(min(estimates), 0.0))} left"
        return text
