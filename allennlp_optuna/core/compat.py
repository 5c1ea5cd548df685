"""Every use of Optuna's, AllenNLP's and Python's private names, and of their version differences, in one place.

Each function says which internal it reaches and why no public API serves. A new Optuna or
AllenNLP release can break only this module, and ``tests/test_compat.py`` names the library and
version when it does. Nothing else in the package may use a private name of either library.

AllenNLP is imported inside the functions that need it, so that importing this module (as the
summary and the report do through their callers) stays cheap.
"""
import argparse
import contextlib
import logging
import os
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Type, Union

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages._heartbeat import BaseHeartbeat  # private: see HeartbeatHooks
from optuna.trial import FrozenTrial

# --- Optuna: storages and trial identity ------------------------------------------------------


def study_storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes.

    Optuna has no public accessor for a study's storage (``Trial.storage`` exists, but only
    inside a trial); failing a trial from outside its objective (a dead worker's, an interrupted
    one) needs the storage's ``set_trial_state_values``.
    """
    return study._storage


def trial_id(trial: Union[optuna.Trial, FrozenTrial]) -> int:
    """The storage's id of a trial (not its number).

    Every ``BaseStorage`` method takes this id and neither ``Trial`` nor ``FrozenTrial`` has a
    public property for it; a spawned training process finds its trial by it.
    """
    return trial._trial_id


def running_trial(study: optuna.Study, trial_id: int) -> optuna.Trial:
    """A live ``Trial`` for the RUNNING trial ``trial_id`` of ``study``, in another process.

    Optuna builds ``Trial`` objects itself (``study.ask``) and documents no way to rebuild one
    from its id; distributed training workers need one to report to the trial.
    """
    return optuna.trial.Trial(study, trial_id)


def rdb_storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The study's storage without Optuna's cache wrapper (an ``RDBStorage`` for URL storages).

    ``optuna.storages.get_storage`` wraps an ``RDBStorage`` in the private ``_CachedStorage``;
    its URL (for training processes) and SQLAlchemy engine (to close pooled connections before
    starting worker processes) are only on the wrapped ``_backend``.
    """
    storage = study_storage(study)
    if isinstance(storage, optuna.storages._CachedStorage):
        storage = storage._backend
    return storage


def pruner_argument(pruner: optuna.pruners.BasePruner, name: str) -> Any:
    """The value ``pruner`` was built with for its constructor argument ``name``.

    Optuna's pruners keep their arguments as private ``_name`` attributes and have no public
    getters; a spawned training process rebuilds an equal pruner from them.

    Raises:
        AttributeError: when this Optuna version keeps the argument under another name.
    """
    return getattr(pruner, f"_{name}")


def has_pruner_argument(pruner: optuna.pruners.BasePruner, name: str) -> bool:
    """Whether :func:`pruner_argument` can read ``name`` from ``pruner``."""
    return hasattr(pruner, f"_{name}")


def distribution_contains(distribution: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` (external representation) lies inside ``distribution``.

    Optuna's distributions check this with the private ``_contains``; the public alternative,
    ``check_distribution_compatibility``, compares two distributions, not a value.
    """
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def sampler_grid(sampler: optuna.samplers.GridSampler) -> Dict[str, List[Any]]:
    """The values of each parameter that a ``GridSampler`` was built with (its ``search_space``).

    Optuna keeps the grid in the private ``_search_space`` and has no public accessor; ``tune``
    checks the grid against the search-space file before the study starts.
    """
    return {name: list(values) for name, values in sampler._search_space.items()}


_OPTUNA_FIXED_PARAMS = "fixed_params"


def enqueued_params(trial: FrozenTrial) -> Optional[Dict[str, Any]]:
    """The values ``Study.enqueue_trial`` gave ``trial`` (also a user's script); ``None`` for a sampled trial.

    Optuna keeps them in its own ``fixed_params`` system attribute (a WAITING trial has no
    ``params`` yet) and offers no public way to ask.
    """
    return trial.system_attrs.get(_OPTUNA_FIXED_PARAMS)


def enqueued_by_optuna(trial: FrozenTrial) -> bool:
    """Whether ``trial`` came from ``Study.enqueue_trial`` (also one a user's script enqueued); see
    :func:`enqueued_params`."""
    return enqueued_params(trial) is not None


OPTUNA_TRIAL_LOGGER = "optuna.study._optimize"
"""The logger of Optuna's private ``optuna.study._optimize`` module, which logs a failed trial
with its traceback (``_log_failed_trial``). Optuna has no option to log it without one."""


class _NoTracebackFor(logging.Filter):
    def __init__(self, explained: Tuple[Type[BaseException], ...]) -> None:
        super().__init__()
        self.explained = explained

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self.explained):
            record.exc_info, record.exc_text = None, None
        return True


def no_trial_traceback_for(*explained: Type[BaseException]) -> None:
    """Keep Optuna's "Trial N failed" warning for ``explained`` errors, without its traceback.

    Errors the plugin explains in one line (``ConfigurationError``) must not print a traceback,
    also not through Optuna's logger; the traceback stays in the trial's ``fail_reason``.
    Installing it twice has no further effect.
    """
    trial_logger = logging.getLogger(OPTUNA_TRIAL_LOGGER)
    if not any(isinstance(f, _NoTracebackFor) and f.explained == explained for f in trial_logger.filters):
        trial_logger.addFilter(_NoTracebackFor(explained))


OPTUNA_SQLITE_TABLES = ("studies", "trials", "version_info")
"""Tables of Optuna's RDB schema (``optuna/storages/_rdb/models.py``) that every supported version has."""


def is_optuna_sqlite_file(path: str) -> bool:
    """Whether ``path`` is an SQLite file holding Optuna's tables, read without changing it.

    Opening a file with Optuna's ``RDBStorage`` creates Optuna's tables in it when they are missing
    (and so writes to any SQLite file it is given); a command looking for studies near a missing
    storage must not touch the user's other databases, so it first reads SQLite's own catalogue,
    read-only, for the table names of Optuna's private schema.
    """
    import sqlite3

    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    return set(OPTUNA_SQLITE_TABLES) <= {row[0] for row in rows}


# --- Optuna: names that differ between the supported versions (3.x to 5.x) --------------------

RetryCallbackBase: Any = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or getattr(
    optuna.storages, "RetryFailedTrialCallback"
)
"""Optuna's retry callback for stale trials: ``RetryHeartbeatStaleTrialCallback`` in Optuna 5,
``RetryFailedTrialCallback`` before."""


def stale_trial_callback_argument() -> str:
    """The ``RDBStorage`` keyword that takes the stale-trial callback in this Optuna version."""
    import inspect

    parameters = inspect.signature(optuna.storages.RDBStorage).parameters
    return "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in parameters else "failed_trial_callback"


RDB_BACKEND_CALLS = frozenset(
    [name for name in dir(optuna.storages.BaseStorage) if not name.startswith("_")]
    + ["record_heartbeat", "_create_new_trial", "_get_trials", "_set_trial_param", "_get_best_trial_id",
       "_get_stale_trial_ids"]
)
"""The ``RDBStorage`` methods that each run one database transaction of their own.

The public ``BaseStorage`` API and the heartbeat, plus the private methods that Optuna's own
``_CachedStorage`` (wrapped around every ``RDBStorage`` a study opens) and ``fail_stale_trials``
call on it directly: a call that waits out a database outage
(:class:`~allennlp_optuna.faults.reconnect.ReconnectingStorage`) must wrap these, and only these (the
other private methods run inside a caller's transaction). Names a version lacks are skipped.
"""


def retry_history(trial: FrozenTrial) -> List[int]:
    """The numbers of the failed trials that ``trial`` retries, oldest first (empty if it is no retry).

    Optuna's retry callback records them in a system attribute; its static ``retry_history`` reads
    it (experimental in every supported version, hence the silenced warning).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return list(RetryCallbackBase.retry_history(trial))


def frozen_trial(trial: optuna.Trial) -> FrozenTrial:
    """The stored state of a running ``trial``, system attributes included.

    ``Trial.system_attrs`` is deprecated and ``Trial`` offers no other way to read what Optuna's
    retry callback recorded on it; the storage has it under the trial's id.
    """
    return study_storage(trial.study).get_trial(trial_id(trial))


def stale_trial_callback(storage: Any) -> Any:
    """The stale-trial callback a storage was built with (``None`` if none), in any supported version."""
    getter = getattr(storage, "get_heartbeat_stale_trial_callback", None) or getattr(
        storage, "get_failed_trial_callback", None
    )
    return getter() if getter is not None else None


# --- Optuna: heartbeats for storages other than RDBStorage ------------------------------------

class HeartbeatHooks(BaseHeartbeat):
    """What makes a storage take part in Optuna's heartbeat, with its private hook given a public name.

    Optuna's heartbeat thread (``study.optimize`` records a running trial's heartbeat), its
    ``fail_stale_trials`` and the stale-trial callback (the retry) work with any storage that is
    also an ``optuna.storages._heartbeat.BaseHeartbeat``, a private class; only ``RDBStorage`` is
    one, so a journal file's trials would never be found stale. A storage inherits this and
    implements ``record_heartbeat``, :meth:`stale_trial_ids`, ``get_heartbeat_interval`` and
    ``get_heartbeat_stale_trial_callback``; Optuna calls the private ``_get_stale_trial_ids``, and
    Optuna before 4.9 ``get_failed_trial_callback`` instead of the latter.
    """

    def stale_trial_ids(self, study_id: int) -> List[int]:
        """The ids of the study's RUNNING trials whose heartbeat is older than the grace period."""
        raise NotImplementedError

    def _get_stale_trial_ids(self, study_id: int) -> List[int]:
        return self.stale_trial_ids(study_id)

    def get_failed_trial_callback(self) -> Any:
        return self.get_heartbeat_stale_trial_callback()


# --- Optuna: constraints, told differently by each version --------------------------------------

TRIALS_TAKE_CONSTRAINTS = hasattr(optuna.trial.Trial, "set_constraint")
"""Whether a trial records its own constraint values (Optuna 5: ``Trial.set_constraint``, read back
as ``FrozenTrial.constraints`` by every sampler, ``best_trial``, ``best_trials`` and the plots).

Optuna 3 and 4 have no such method: a sampler learns a trial's constraints only from its
``constraints_func``, called after the trial, which Optuna stores in the trial's ``constraints``
system attribute; only TPE, NSGA-II (and, from 4.2, GP) samplers take one."""

_OPTUNA_MAJOR = int(optuna.__version__.split(".")[0])


def record_trial_constraints(trial: optuna.Trial, violations: Dict[str, float]) -> None:
    """Tell Optuna the violation of each constraint of a trial (positive: violated).

    Optuna 5: one ``trial.set_constraint(name, violation)`` each. Optuna 3 and 4: nothing here;
    the sampler's ``constraints_func`` (:func:`sampler_constraint_arguments`) reads the values the
    trial recorded in its user attributes once it ends.
    """
    if TRIALS_TAKE_CONSTRAINTS:
        for name, violation in violations.items():
            trial.set_constraint(name, violation)


def sampler_constraint_arguments(constraints_func: Callable[[FrozenTrial], Sequence[float]]) -> Dict[str, Any]:
    """The keyword arguments that make a sampler use a study's constraints.

    Optuna 3 and 4: ``{"constraints_func": constraints_func}``. Optuna 5: none; its samplers read
    ``FrozenTrial.constraints``, and ``constraints_func`` is deprecated (a ``FutureWarning``).
    """
    return {} if TRIALS_TAKE_CONSTRAINTS else {"constraints_func": constraints_func}


def sampler_uses_constraints(sampler: Optional[optuna.samplers.BaseSampler]) -> bool:
    """Whether ``sampler`` (``None``: Optuna's default, TPE) models constraints when it samples.

    In every supported version the samplers that do are those that take a ``constraints_func``
    (TPE, NSGA-II, NSGA-III, GP); random, grid, QMC and CMA-ES sampling ignore constraints.
    """
    import inspect

    if sampler is None:
        return True
    return "constraints_func" in inspect.signature(type(sampler).__init__).parameters


def pareto_front_constraint_arguments(constraints_func: Callable[[FrozenTrial], Sequence[float]]) -> Dict[str, Any]:
    """The keyword arguments of ``plot_pareto_front`` that grey out infeasible trials.

    Optuna 3's plot only knows them from ``constraints_func``; Optuna 4 reads the stored
    constraints itself and deprecates the argument (a ``FutureWarning``), as does Optuna 5.
    """
    return {"constraints_func": constraints_func} if _OPTUNA_MAJOR < 4 else {}


# --- AllenNLP ---------------------------------------------------------------------------------


def registry(base: Type[Any]) -> Dict[str, Any]:
    """AllenNLP's registry of ``base``'s subclasses: ``name -> (class, constructor)``, writable.

    ``Registrable.register(name, exist_ok=True)`` can overwrite an entry, but it logs an INFO
    line each time, into every trial's ``out.log``; data reuse swaps entries for each trial and
    puts the originals back, so it works on the registry itself.
    """
    from allennlp.common import Registrable

    return Registrable._registry[base]


def environment_variables() -> Dict[str, str]:
    """The environment as ``Params.from_file`` passes it to Jsonnet (non-encodable values dropped).

    AllenNLP's filter is the private ``allennlp.common.params._environment_variables``; checking a
    config must see exactly the ext vars that training will see.
    """
    from allennlp.common.params import _environment_variables

    return _environment_variables()


def clear_transformer_caches() -> None:
    """Empty AllenNLP's cache of pretrained transformers and tokenizers.

    AllenNLP hands the cached module to the next model asking for the same name; only the
    private ``cached_transformers._clear_caches`` empties it, and without it a trial would start
    from an earlier trial's fine-tuned weights.
    """
    from allennlp.common import cached_transformers

    cached_transformers._clear_caches()


@contextlib.contextmanager
def archive_skipped() -> Iterator[None]:
    """While open, AllenNLP's ``train_model`` writes everything but ``model.tar.gz``.

    ``train_model`` always archives and has no option to skip it; it calls the module-level
    ``allennlp.commands.train.archive_model``, which is swapped for a no-op while this is open.
    """
    from allennlp.commands import train as allennlp_train

    original = allennlp_train.archive_model

    def skip(serialization_dir: str, **kwargs: Any) -> str:
        return os.path.join(serialization_dir, "model.tar.gz")

    allennlp_train.archive_model = skip
    try:
        yield
    finally:
        allennlp_train.archive_model = original


def retarget_best_model(training_state_path: str, serialization_dir: str) -> None:
    """Point a copied AllenNLP training state's best model at ``serialization_dir/best.th``.

    The training state (AllenNLP's checkpoint format, version 1) records the path of the run's
    best weights (``best_model_filename``), and the trainer loads that file when the resumed run
    ends without a better epoch. A retry resumes from a copy of the killed trial's directory, so
    the recorded path would be the killed trial's; AllenNLP has no option to re-root it.
    The file is written anew (never through a hard link to the killed trial's copy).
    """
    import torch

    load_options = {"weights_only": False} if "weights_only" in torch.load.__code__.co_varnames else {}
    state = torch.load(training_state_path, map_location="cpu", **load_options)
    if state.get("best_model_filename"):
        state["best_model_filename"] = os.path.join(serialization_dir, os.path.basename(state["best_model_filename"]))
    os.remove(training_state_path)
    torch.save(state, training_state_path)


def storage_engine(study: optuna.Study) -> Optional[Any]:
    """The SQLAlchemy engine of a study's RDB storage, or ``None`` for other storages."""
    return getattr(rdb_storage(study), "engine", None)


# --- Python's argparse ------------------------------------------------------------------------


def option_strings(parser: argparse.ArgumentParser) -> List[str]:
    """Every option string ``parser`` takes (``-s``, ``--serialization-dir``, ``--help``, ...).

    argparse keeps its options in the private ``_option_string_actions`` and has no public way to
    list them; suggesting the option a user meant needs them.
    """
    return sorted(parser._option_string_actions)


# --- Python's multiprocessing -----------------------------------------------------------------


def stop_fork_server() -> None:
    """End this process's fork server (it started the worker processes), and wait for it.

    Left alone it ends only when this process does, after ``tune`` has returned, still in the
    terminal's process group. Python has no public call for it: ``multiprocessing.forkserver.
    _forkserver._stop`` (Python 3.8 to 3.13) is what CPython's own tests use; where it is missing
    the server ends with this process, as before. It starts again on demand.
    """
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()


@contextlib.contextmanager
def console_log_handlers_adjusted(adjust: Callable[[logging.Handler], None]) -> Iterator[None]:
    """While open, ``adjust`` is applied to the console handlers each AllenNLP training installs.

    ``train_model`` calls ``allennlp.common.logging.prepare_global_logging``, which replaces the
    root logger's handlers with a file handler (the trial's ``out.log``) and handlers writing
    INFO to standard output and errors to standard error; it has no option to leave the console
    out. The module-level function is wrapped so that, after it ran, ``adjust`` gets each handler
    writing to the console (the file handler is left as it is).
    """
    from allennlp.common import logging as allennlp_logging

    original = allennlp_logging.prepare_global_logging

    def prepare(*args: Any, **kwargs: Any) -> None:
        consoles = (sys.stdout, sys.stderr)
        original(*args, **kwargs)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                if handler.stream in consoles:
                    adjust(handler)

    allennlp_logging.prepare_global_logging = prepare
    try:
        yield
    finally:
        allennlp_logging.prepare_global_logging = original
