"""Trials with given values, run before the sampler's (``allennlp tune --enqueue-trial``).

A values file is a JSON object mapping hyperparameter names to values, e.g. the guide's
hand-tuned baseline::

    {"embedding_dim": 128, "max_filter_size": 4, "num_filters": 128, "dropout": 0.2, "lr": 0.1}

Each file becomes one trial through Optuna's ``Study.enqueue_trial``; hyperparameters a
file leaves out are sampled. The trial keeps the file's name in its ``enqueued_from`` user
attribute, which the report uses to mark it and to draw it as the baseline.
"""
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

import optuna
from allennlp.common.checks import ConfigurationError
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.core.compat import distribution_contains, enqueued_by_optuna, enqueued_params
from allennlp_optuna.core.errors import read_json_file
from allennlp_optuna.study.search_space import SearchSpace
from allennlp_optuna.core.trial_attrs import ENQUEUED_ATTR


@dataclass(frozen=True)
class EnqueuedValues:
    """The hyperparameter values of one ``--enqueue-trial`` file."""

    source: str
    params: Dict[str, Any]


def read_enqueued_values(path: str, search_space: SearchSpace) -> EnqueuedValues:
    """Read a values file and check every value against the search space.

    Args:
        path: JSON file holding an object of ``name: value``.
        search_space: the study's hyperparameters; names must be among them, and values
            inside their ranges, so that the enqueued trial is one the sampler could draw.

    Raises:
        ConfigurationError: naming the file, the offending entry and what was expected.
    """
    params = read_json_file(path, "--enqueue-trial file")
    if not isinstance(params, dict) or not params:
        raise ConfigurationError(
            f"--enqueue-trial file {path}: expected a JSON object of hyperparameter values such as "
            f'{{"lr": 0.1}}, got {json.dumps(params)[:60]}'
        )
    distributions = {h.name: h.distribution for h in search_space.hyperparameters}
    unknown = sorted(set(params) - set(distributions))
    if unknown:
        raise ConfigurationError(
            f"--enqueue-trial file {path}: unknown hyperparameter(s) {unknown}; "
            f"the search space has {', '.join(search_space.names)}"
        )
    for name, value in params.items():
        distribution = distributions[name]
        if not distribution_contains(distribution, value):
            raise ConfigurationError(
                f"--enqueue-trial file {path}: {name}={json.dumps(value)} is outside the search space "
                f"({distribution}); change the value or widen the range"
            )
    ordered = {name: params[name] for name in search_space.names if name in params}
    return EnqueuedValues(source=path, params=ordered)


def enqueue_trials(study: optuna.Study, values: Sequence[EnqueuedValues], after_failures: bool = False) -> None:
    """Queue one trial per values file, in order; a resumed study does not run them twice.

    Args:
        study: the study.
        values: the ``--enqueue-trial`` files' values.
        after_failures: the study is continued after all its trials failed: values whose trial
            failed are queued again (unless a trial with them is still queued).
    """
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,)) if after_failures else []
    queued = [enqueued_params(trial) for trial in waiting]
    for entry in values:
        if entry.params not in queued:
            study.enqueue_trial(
                entry.params,
                user_attrs={ENQUEUED_ATTR: os.path.basename(entry.source)},
                skip_if_exists=not after_failures,
            )


def enqueued_from(trial: FrozenTrial) -> Optional[str]:
    """Where an enqueued trial's values came from (a file name, or ``"enqueue_trial"``); else ``None``."""
    if ENQUEUED_ATTR in trial.user_attrs:
        return str(trial.user_attrs[ENQUEUED_ATTR])
    if enqueued_by_optuna(trial):
        return "enqueue_trial"
    return None
