"""The library internals that `allennlp_optuna.core.compat` relies on are still there and still behave.

Each assertion names the library and its version: when a new Optuna or AllenNLP release moves an
internal, this file says which one, before a study breaks in the middle of a run.
"""
import argparse
import logging
import os
import sys
from pathlib import Path

import optuna
import pytest
from allennlp.common import Registrable, cached_transformers
from allennlp.data import DatasetReader
from allennlp.version import VERSION as ALLENNLP_VERSION
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from allennlp_optuna.core import compat
from allennlp_optuna.study.constraints import Constraints, ConstraintViolations, record_constraints

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

OPTUNA = f"optuna {optuna.__version__}"
ALLENNLP = f"allennlp {ALLENNLP_VERSION}"


@pytest.fixture
def rdb_study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'compat.db'}", study_name="compat")


def test_a_study_storage_and_trial_ids_reach_the_storage(rdb_study: optuna.Study) -> None:
    trial = rdb_study.ask()
    storage = compat.study_storage(rdb_study)

    assert isinstance(storage, optuna.storages.BaseStorage), f"{OPTUNA}: Study._storage is no storage"
    assert storage.get_trial(compat.trial_id(trial)).number == trial.number, f"{OPTUNA}: Trial._trial_id changed"
    frozen = rdb_study.trials[0]
    assert compat.trial_id(frozen) == compat.trial_id(trial), f"{OPTUNA}: FrozenTrial._trial_id changed"
    rebuilt = compat.running_trial(rdb_study, compat.trial_id(trial))
    assert rebuilt.number == trial.number, f"{OPTUNA}: Trial(study, trial_id) no longer rebuilds a trial"


def test_an_rdb_storage_is_found_behind_optunas_cache(rdb_study: optuna.Study, tmp_path: Path) -> None:
    storage = compat.rdb_storage(rdb_study)

    assert isinstance(storage, optuna.storages.RDBStorage), f"{OPTUNA}: _CachedStorage._backend is gone"
    assert storage.url == f"sqlite:///{tmp_path / 'compat.db'}", f"{OPTUNA}: RDBStorage.url changed"
    assert compat.storage_engine(rdb_study) is not None, f"{OPTUNA}: RDBStorage.engine is gone"
    assert compat.storage_engine(optuna.create_study()) is None  # in memory: nothing to close


def test_pruner_arguments_are_readable() -> None:
    pruner = optuna.pruners.PatientPruner(optuna.pruners.MedianPruner(n_startup_trials=3), patience=2)

    assert compat.has_pruner_argument(pruner, "patience"), f"{OPTUNA}: PatientPruner._patience is gone"
    assert compat.pruner_argument(pruner, "patience") == 2, f"{OPTUNA}: PatientPruner._patience changed"
    wrapped = compat.pruner_argument(pruner, "wrapped_pruner")
    assert compat.pruner_argument(wrapped, "n_startup_trials") == 3, f"{OPTUNA}: MedianPruner arguments changed"


@pytest.mark.parametrize(
    "distribution, inside, outside",
    [
        (IntDistribution(1, 10, step=3), 4, 5),
        (FloatDistribution(0.1, 1.0, log=True), 0.5, 2.0),
        (CategoricalDistribution(["adam", "sgd"]), "sgd", "rmsprop"),
    ],
)
def test_distributions_tell_whether_they_contain_a_value(distribution, inside, outside) -> None:  # type: ignore[no-untyped-def]
    assert compat.distribution_contains(distribution, inside), f"{OPTUNA}: {type(distribution).__name__}._contains changed"
    assert not compat.distribution_contains(distribution, outside), f"{OPTUNA}: {type(distribution).__name__}._contains changed"


def test_enqueued_trials_are_recognised() -> None:
    study = optuna.create_study()
    study.enqueue_trial({"x": 1.0})
    study.optimize(lambda trial: trial.suggest_float("x", 0, 2), n_trials=2)
    study.enqueue_trial({"x": 0.5})

    enqueued, sampled, waiting = study.trials
    assert compat.enqueued_by_optuna(enqueued), f"{OPTUNA}: enqueued trials no longer carry 'fixed_params'"
    assert not compat.enqueued_by_optuna(sampled)
    assert compat.enqueued_params(waiting) == {"x": 0.5}, f"{OPTUNA}: 'fixed_params' no longer holds the values"


def test_a_grid_samplers_grid_is_readable() -> None:
    sampler = optuna.samplers.GridSampler({"lr": [0.1, 0.01], "optimizer": ["adam"]})

    assert compat.sampler_grid(sampler) == {"lr": [0.1, 0.01], "optimizer": ["adam"]}, (
        f"{OPTUNA}: GridSampler._search_space changed"
    )


def test_a_parsers_options_are_listed() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-s", "--serialization-dir")
    parser.add_argument("config")

    assert compat.option_strings(parser) == ["--help", "--serialization-dir", "-h", "-s"], (
        f"Python {sys.version_info[:2]}: ArgumentParser._option_string_actions changed"
    )


def test_the_retry_callback_and_its_storage_argument_exist(tmp_path: Path) -> None:
    callback = compat.RetryCallbackBase(max_retry=1)
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'retry.db'}",
        heartbeat_interval=60,
        **{compat.stale_trial_callback_argument(): callback},
    )

    assert compat.stale_trial_callback(storage) is callback, f"{OPTUNA}: the stale-trial callback getter changed"
    assert hasattr(compat.RetryCallbackBase, "retried_trial_number"), f"{OPTUNA}: retried_trial_number is gone"


def test_allennlp_registries_are_writable_and_shared() -> None:
    entries = compat.registry(DatasetReader)

    assert entries is Registrable._registry[DatasetReader], f"{ALLENNLP}: Registrable._registry changed"
    assert entries["text_classification_json"][0] is DatasetReader.by_name("text_classification_json"), (
        f"{ALLENNLP}: registry entries are no longer (class, constructor)"
    )


def test_allennlp_sees_the_environment_through_the_private_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLENNLP_OPTUNA_COMPAT", "seen")

    assert compat.environment_variables()["ALLENNLP_OPTUNA_COMPAT"] == "seen", (
        f"{ALLENNLP}: allennlp.common.params._environment_variables changed"
    )


def test_transformer_caches_are_cleared() -> None:
    cached_transformers._model_cache[("compat", True, None, False, None)] = object()  # type: ignore[index]

    compat.clear_transformer_caches()

    assert not cached_transformers._model_cache, f"{ALLENNLP}: cached_transformers._clear_caches changed"


def test_train_model_archives_through_a_swappable_module_name(tmp_path: Path) -> None:
    from allennlp.commands import train as allennlp_train

    original = allennlp_train.archive_model
    with compat.archive_skipped():
        skipped = allennlp_train.archive_model(str(tmp_path))

    assert allennlp_train.archive_model is original
    assert skipped == os.path.join(str(tmp_path), "model.tar.gz") and not os.path.exists(skipped)
    assert "archive_model(" in open(allennlp_train.__file__, encoding="utf-8").read(), (
        f"{ALLENNLP}: train_model no longer calls allennlp.commands.train.archive_model"
    )


def test_the_fork_server_stops_and_starts_again() -> None:
    import multiprocessing
    import platform
    from multiprocessing import forkserver

    python = f"Python {platform.python_version()}"
    assert hasattr(forkserver._forkserver, "_stop"), f"{python}: multiprocessing.forkserver._forkserver._stop is gone"
    context = multiprocessing.get_context("forkserver")
    process = context.Process(target=os.getpid)
    process.start()
    process.join()
    server = forkserver._forkserver._forkserver_pid

    compat.stop_fork_server()

    assert forkserver._forkserver._forkserver_pid is None, f"{python}: _stop no longer ends the fork server"
    with pytest.raises(ProcessLookupError):
        os.kill(server, 0)  # ended and reaped
    again = context.Process(target=os.getpid)
    again.start()
    again.join()
    assert again.exitcode == 0


def test_optunas_failed_trial_logger_is_the_one_the_traceback_filter_sits_on() -> None:
    from optuna.study import _optimize

    assert _optimize._logger.name == compat.OPTUNA_TRIAL_LOGGER, f"{OPTUNA}: failed trials log elsewhere"
    logged = []
    handler = logging.Handler()
    handler.emit = logged.append  # type: ignore[method-assign]
    trial_logger = logging.getLogger(compat.OPTUNA_TRIAL_LOGGER)
    filters = list(trial_logger.filters)
    trial_logger.addHandler(handler)
    try:
        compat.no_trial_traceback_for(ValueError)
        study = optuna.create_study()
        study.optimize(lambda trial: float(int("not a number")), n_trials=1, catch=(ValueError,))
    finally:
        trial_logger.removeHandler(handler)
        trial_logger.filters[:] = filters
    assert [r.getMessage().split(" with ")[0] for r in logged][:1] == ["Trial 0 failed"], f"{OPTUNA}: no failure log"
    assert all(r.exc_info is None for r in logged), f"{OPTUNA}: the failed trial's traceback is still logged"


def test_the_rdb_storage_calls_that_wait_out_outages_exist_and_each_runs_its_own_transaction() -> None:
    from optuna.storages import RDBStorage

    missing = sorted(name for name in compat.RDB_BACKEND_CALLS if not callable(getattr(RDBStorage, name, None)))
    assert missing == [], f"{OPTUNA}: RDBStorage lacks {missing}; update compat.RDB_BACKEND_CALLS"
    import inspect

    cached = inspect.getsource(optuna.storages._CachedStorage)
    backend_calls = {call.split("(")[0] for call in cached.split("self._backend.")[1:]}
    assert backend_calls <= compat.RDB_BACKEND_CALLS | {"get_heartbeat_interval", "get_failed_trial_callback",
                                                       "get_heartbeat_stale_trial_callback"}, (
        f"{OPTUNA}: _CachedStorage calls {sorted(backend_calls - compat.RDB_BACKEND_CALLS)} on its RDBStorage"
    )


def test_a_resumed_training_state_points_at_its_own_best_model(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "training_state_e1.th"
    torch.save({"version": 1, "best_model_filename": "/elsewhere/trial_0/best.th", "epochs_completed": 1}, path)

    compat.retarget_best_model(str(path), str(tmp_path / "trial_1"))

    state = torch.load(path, weights_only=False) if "weights_only" in torch.load.__code__.co_varnames else torch.load(path)
    assert state == {"version": 1, "best_model_filename": str(tmp_path / "trial_1" / "best.th"), "epochs_completed": 1}

def constrained_study(directions: list) -> optuna.Study:
    """Two trials under ``x<=1``: trial 0 (x=2, the better value) violates it, trial 1 (x=0.5) satisfies it."""
    constraints = Constraints.parse(["x<=1"])
    arguments = compat.sampler_constraint_arguments(ConstraintViolations(tuple(constraints.texts)))
    study = optuna.create_study(directions=directions, sampler=optuna.samplers.TPESampler(seed=0, **arguments))
    for x in (2.0, 0.5):
        study.enqueue_trial({"x": x})

    def objective(trial: optuna.Trial) -> list:
        x = trial.suggest_float("x", 0, 2)
        record_constraints(trial, constraints, {"x": x})
        return [x, -x][: len(directions)]

    study.optimize(objective, n_trials=2)
    return study


def test_recorded_violations_reach_optunas_own_constraint_support() -> None:
    study = constrained_study(["maximize"])

    if compat.TRIALS_TAKE_CONSTRAINTS:
        assert [t.constraints for t in study.trials] == [{"x<=1": 1.0}, {"x<=1": -0.5}], (
            f"{OPTUNA}: Trial.set_constraint no longer shows in FrozenTrial.constraints"
        )
    else:  # the sampler's constraints_func stored them in Optuna's own system attribute
        assert [t.system_attrs["constraints"] for t in study.trials] == [(1.0,), (-0.5,)], (
            f"{OPTUNA}: the sampler no longer stores constraints_func's values"
        )
    if int(optuna.__version__.split(".")[0]) >= 4:  # Optuna 3's best_trial ignores constraints (the plugin does not)
        assert study.best_trial.number == 1, f"{OPTUNA}: best_trial no longer leaves out infeasible trials"


def test_the_pareto_plot_greys_out_trials_optuna_knows_are_infeasible() -> None:
    study = constrained_study(["maximize", "maximize"])
    greyed = compat.pareto_front_constraint_arguments(ConstraintViolations(("x<=1",)))

    figure = optuna.visualization.plot_pareto_front(study, **greyed)

    infeasible = [trace for trace in figure.data if "Infeasible Trial" in str(trace.hovertemplate)]
    assert [list(trace.x) for trace in infeasible] == [[2.0]], f"{OPTUNA}: the Pareto plot no longer marks infeasible trials"


def test_samplers_that_model_constraints_are_recognised() -> None:
    assert compat.sampler_uses_constraints(None)  # Optuna's default, TPE
    assert compat.sampler_uses_constraints(optuna.samplers.TPESampler())
    assert compat.sampler_uses_constraints(optuna.samplers.NSGAIISampler())
    assert not compat.sampler_uses_constraints(optuna.samplers.RandomSampler())


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_optunas_heartbeat_reaches_a_journal_files_trials_and_retries_a_stale_one(tmp_path: Path) -> None:
    """HeartbeatHooks: Optuna's heartbeat thread and fail_stale_trials work with a journal file."""
    import time

    from allennlp_optuna.core.trial_attrs import HEARTBEAT_ATTR
    from allennlp_optuna.faults.recovery import recoverable_storage, retried_trial_number

    storage = recoverable_storage(str(tmp_path / "study.log"), heartbeat_interval=1)
    study = optuna.create_study(storage=storage)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    assert HEARTBEAT_ATTR in study.trials[0].system_attrs, f"{OPTUNA}: study.optimize sent no heartbeat"

    silent = study.ask()
    storage.set_trial_system_attr(compat.trial_id(silent), HEARTBEAT_ATTR, time.time() - 10)
    optuna.storages.fail_stale_trials(study)

    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "WAITING"], f"{OPTUNA}: stale trials kept"
    retry = study.trials[2]
    assert retried_trial_number(retry) == silent.number and HEARTBEAT_ATTR not in retry.system_attrs
