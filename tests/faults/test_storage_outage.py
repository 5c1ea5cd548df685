"""The database goes away mid-study: a PostgreSQL server restarted while workers train and report.

The test starts a throwaway server of its own (:func:`benchmarks.postgres.throwaway_postgres`:
``scripts/test-postgres`` on a free port), so it can restart it without disturbing the server
the other tests share.
"""
import json
import time
from pathlib import Path
from typing import Iterator

import optuna
import pytest
from optuna.trial import TrialState

from benchmarks.postgres import PostgresServer, PostgresUnavailable, throwaway_postgres
from tests.conftest import write_json
from tests.training_probe import HOLD_ENV, probe_environment, trained_epochs
from tests.parallel.test_workers import assert_trained_in_own_directory, by_state, start_tune, tune_argv, wait_for

DOWN_SECONDS = 4
EPOCHS = 8


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    try:
        with throwaway_postgres() as server:
            yield server
    except PostgresUnavailable as error:
        pytest.fail(str(error), pytrace=False)


def test_workers_ride_out_a_postgresql_restart_and_finish_the_budget_exactly(
    workdir: Path, own_postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pruner that never prunes, so every epoch of every trial reports to the database.
    never_prunes = write_json(workdir / "optuna.json", {"pruner": {"type": "MedianPruner",
                                                                   "attributes": {"n_startup_trials": 100}}})
    overrides = {"trainer.num_epochs": EPOCHS, "trainer.callbacks": [{"type": "test_training_probe"}]}
    argv = tune_argv(own_postgres.url, "outage", "--n-workers", "2", "--max-trials", "6",
                     "--optuna-param-path", str(never_prunes), "-o", json.dumps(overrides),
                     "--include-package", "tests.training_probe")
    hold = workdir / "hold"  # while it exists, trials wait at the end of each epoch, before reporting it
    hold.touch()
    for name, value in probe_environment(workdir, {HOLD_ENV: str(hold)}).items():
        monkeypatch.setenv(name, value)
    tune = start_tune(argv, workdir)
    try:
        wait_for(lambda: trained_epochs(workdir), "a trial to finish its first epoch")
        running = {t.number for t in optuna.load_study(study_name="outage", storage=own_postgres.url).trials
                   if t.state == TrialState.RUNNING}
        with own_postgres.down():
            hold.unlink()  # the held trials now report their epoch to a server that is down
            time.sleep(DOWN_SECONDS)
        back = time.time()
        code = tune.wait(300)
    finally:
        tune.kill()

    log = next(workdir.glob("tune-*.log")).read_text()
    assert code == 0, log[-3000:]
    assert "is unreachable" in log and "trying again for up to 300 s" in log
    study = optuna.load_study(study_name="outage", storage=own_postgres.url)
    states = by_state(study)
    assert set(states) == {"COMPLETE"} and len(states["COMPLETE"]) == 6  # none lost, failed, doubled or RUNNING
    for trial in study.trials:
        assert_trained_in_own_directory(trial, workdir)
        assert sorted(trial.intermediate_values) == list(range(EPOCHS))  # every epoch's report arrived
    # The trials that were training when the server went down finished after it came back.
    assert running and all(study.trials[n].datetime_complete.timestamp() > back for n in running)
