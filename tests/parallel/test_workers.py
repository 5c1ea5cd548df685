"""Parallel workers, study-wide budgets and crash recovery: real processes, real PostgreSQL.

The PostgreSQL tests read the server's URL from ALLENNLP_OPTUNA_TEST_POSTGRES: `make test` starts
a throwaway server (`scripts/with-test-postgres`), and so does `.ci/run`. Without it they fail,
saying how to run them; they are never skipped.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Optional, TypeVar

import optuna
import pytest
from allennlp.common.checks import ConfigurationError
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.parallel.budget import AskLock, StudyBudget
from allennlp_optuna.study.config import load_params
from allennlp_optuna.core.trial_attrs import WORKER_ATTR
from allennlp_optuna.faults.recovery import recoverable_storage, retried_trial_number
from allennlp_optuna.study.search_space import SearchSpace
from allennlp_optuna.tuning import tune
from allennlp_optuna.parallel.plan import plan_workers, with_overrides
from tests.conftest import CONFIG, HPARAMS, read_json, run_cli, run_cli_process
from tests.training_probe import BARRIER_ENV, probe_environment

POSTGRES_ENV = "ALLENNLP_OPTUNA_TEST_POSTGRES"
WAIT_SECONDS = 120
FAST_TRIALS = '{"trainer.num_epochs": 1}'
SLOW_TRIALS = '{"trainer.num_epochs": 15}'  # a few seconds per trial: time to kill one mid-training
BARRIER_TRIALS = json.dumps({"trainer.num_epochs": 1, "trainer.callbacks": [{"type": "test_training_probe"}]})

T = TypeVar("T")


@pytest.fixture
def postgres() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.fail(
            f"{POSTGRES_ENV} is not set: run the tests with `make test` (it starts a throwaway PostgreSQL), "
            f"or `scripts/with-test-postgres .venv/bin/pytest ...`",
            pytrace=False,
        )
    return url


def every_worker_trains(workdir: Path, n_workers: int) -> Dict[str, str]:
    """The environment of a tune whose first trials wait until each of ``n_workers`` workers has one.

    Without it, a worker process that starts slowly can find the whole budget taken by the others,
    and the test would depend on timing (see ``tests/training_probe.py``); with it, every worker
    provably trains a trial. Use with ``-o BARRIER_TRIALS --include-package tests.training_probe``.
    """
    return probe_environment(workdir, {BARRIER_ENV: str(n_workers)})


def unique_name() -> str:
    return f"study_{uuid.uuid4().hex[:12]}"


def tune_argv(storage: str, study_name: str, *extra: str) -> List[str]:
    return ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", storage, "--study-name", study_name,
            "--metrics", "best_validation_accuracy", *extra]


def start_tune(argv: List[str], cwd: Path) -> subprocess.Popen:
    """`allennlp ARGV` in a session of its own, as a terminal runs it (Ctrl-C reaches its whole group)."""
    with open(cwd / f"tune-{uuid.uuid4().hex[:6]}.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "allennlp", *argv], cwd=cwd, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def running_processes_of_group(group: int) -> List[str]:
    """The processes of process group ``group`` that have not exited, as ``PID COMMAND`` lines.

    A process that has exited but not been reaped (a zombie) does not count: its parent is gone
    and a container's init may never reap it.
    """
    running = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            state, _, process_group = (process / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            if int(process_group) == group and state != "Z":
                running.append(f"{process.name} {(process / 'cmdline').read_bytes()[:200]!r}")
        except (OSError, ValueError):
            continue  # it ended meanwhile
    return running


def wait_for(condition: Callable[[], Optional[T]], what: str, timeout: float = WAIT_SECONDS) -> T:
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def training_trial(storage: str, study_name: str) -> Optional[FrozenTrial]:
    """A RUNNING trial whose worker has started writing its serialization directory."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return None
    for trial in study.get_trials(states=(TrialState.RUNNING,)):
        directory = trial.user_attrs.get("serialization_dir")
        if WORKER_ATTR in trial.system_attrs and directory and (Path(directory) / "config.json").exists():
            return trial
    return None


def by_state(study: optuna.Study) -> Dict[str, List[FrozenTrial]]:
    states: Dict[str, List[FrozenTrial]] = {}
    for trial in study.get_trials():
        states.setdefault(trial.state.name, []).append(trial)
    return states


def assert_trained_in_own_directory(trial: FrozenTrial, workdir: Path) -> None:
    directory = workdir / "result" / f"trial_{trial.number}"
    assert trial.user_attrs["serialization_dir"] == str(directory)
    assert trial.value == read_json(directory / "metrics.json")["best_validation_accuracy"]


def test_three_workers_on_postgresql_finish_exactly_the_study_wide_budget(workdir: Path, postgres: str) -> None:
    name = unique_name()

    argv = tune_argv(postgres, name, "--n-workers", "3", "--max-trials", "9", "-o", BARRIER_TRIALS,
                     "--include-package", "tests.training_probe")

    result = run_cli_process(argv, cwd=workdir, env=every_worker_trains(workdir, 3))

    assert result.code == 0, result
    study = optuna.load_study(study_name=name, storage=postgres)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 9
    assert sorted(t.number for t in trials) == list(range(9))
    for trial in trials:
        assert_trained_in_own_directory(trial, workdir)
    workers = {t.system_attrs[WORKER_ATTR]["pid"] for t in trials}
    assert len(workers) == 3  # each worker process ran trials of its own
    assert f"Study '{name}' (maximize best_validation_accuracy): 9 trials: 9 COMPLETE" in result.out


def test_n_trials_is_shared_by_the_workers_and_max_trials_by_every_run(
    workdir: Path, storage: str, capsys: pytest.CaptureFixture
) -> None:
    argv = tune_argv(storage, "cnn", "--n-workers", "2", "--n-trials", "3", "-o", BARRIER_TRIALS,
                     "--include-package", "tests.training_probe")

    first = run_cli_process(argv, cwd=workdir, env=every_worker_trains(workdir, 2))

    assert first.code == 0, first
    assert "2 workers share the SQLite file" in first.err and "use a journal file (--storage study.log)" in first.err
    study = optuna.load_study(study_name="cnn", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3  # 3 in total, not 3 per worker
    assert len({t.system_attrs[WORKER_ATTR]["pid"] for t in study.trials}) == 2
    assert not os.path.exists(AskLock(storage, "cnn").path)  # the workers' lock file is gone with them

    topped_up = run_cli(tune_argv(storage, "cnn", "--max-trials", "4", "--skip-if-exists", "-o", FAST_TRIALS), capsys)
    again = run_cli(tune_argv(storage, "cnn", "--max-trials", "4", "--skip-if-exists", "-o", FAST_TRIALS), capsys)

    assert topped_up.code == 0 and again.code == 0, (topped_up, again)
    study = optuna.load_study(study_name="cnn", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    for trial in study.trials:
        assert_trained_in_own_directory(trial, workdir)


def test_killed_worker_trial_fails_and_its_retry_completes_after_a_restart(workdir: Path, postgres: str) -> None:
    name = unique_name()
    first = start_tune(tune_argv(postgres, name, "--max-trials", "3", "-o", SLOW_TRIALS), workdir)
    try:
        killed = wait_for(lambda: training_trial(postgres, name), "a trial to start training")
        checkpoints = Path(killed.user_attrs["serialization_dir"]).glob
        wait_for(lambda: list(checkpoints("model_state_e*")), "the trial's first epoch checkpoint")
        os.kill(killed.system_attrs[WORKER_ATTR]["pid"], signal.SIGKILL)
        first.wait(WAIT_SECONDS)
    finally:
        first.kill()
    assert optuna.load_study(study_name=name, storage=postgres).trials[killed.number].state == TrialState.RUNNING
    killed_dir = Path(killed.user_attrs["serialization_dir"])
    killed_files = sorted(p.name for p in killed_dir.iterdir())

    # The restart sees at once that the trial's process is gone (the heartbeat's grace period is
    # 120 s by default, more than this wait allows).
    restart = run_cli_process(tune_argv(postgres, name, "--max-trials", "3", "--skip-if-exists", "-o", FAST_TRIALS),
                              cwd=workdir)

    assert restart.code == 0, restart
    study = optuna.load_study(study_name=name, storage=postgres)
    states = by_state(study)
    assert [t.number for t in states["FAIL"]] == [killed.number]
    assert len(states["COMPLETE"]) == 3 and set(states) == {"FAIL", "COMPLETE"}
    [retry] = [t for t in states["COMPLETE"] if retried_trial_number(t) is not None]
    assert retried_trial_number(retry) == killed.number
    assert retry.params == killed.params
    assert retry.number > killed.number
    assert_trained_in_own_directory(retry, workdir)
    # The rerun trained 1 epoch, not the killed trial's 15: its config differs, so the retry did not resume
    # the killed trial; once the retry finished, the dead trial's epoch checkpoints were removed, nothing else.
    assert not (workdir / "result" / f"trial_{retry.number}" / "metrics_epoch_1.json").exists()
    assert any(name.startswith("model_state_e") for name in killed_files)
    assert sorted(p.name for p in killed_dir.iterdir()) == [
        name for name in killed_files if not name.startswith(("model_state_e", "training_state_e"))
    ]


def test_a_killed_worker_is_replaced_and_its_trial_retried_in_the_same_run(workdir: Path, postgres: str) -> None:
    name = unique_name()
    tune = start_tune(tune_argv(postgres, name, "--n-workers", "2", "--max-trials", "3", "-o", SLOW_TRIALS), workdir)
    try:
        killed = wait_for(lambda: training_trial(postgres, name), "a trial to start training")
        worker_pid = killed.system_attrs[WORKER_ATTR]["pid"]
        assert worker_pid != tune.pid
        os.kill(worker_pid, signal.SIGKILL)
        code = tune.wait(WAIT_SECONDS)
    finally:
        tune.kill()

    assert code == 0
    states = by_state(optuna.load_study(study_name=name, storage=postgres))
    assert [t.number for t in states["FAIL"]] == [killed.number]
    assert len(states["COMPLETE"]) == 3 and set(states) == {"FAIL", "COMPLETE"}
    assert [retried_trial_number(t) for t in states["COMPLETE"]].count(killed.number) == 1


def test_ctrl_c_fails_the_running_trials_ends_every_process_and_resume_finishes(
    workdir: Path, postgres: str
) -> None:
    name = unique_name()
    slow_with_loader_workers = '{"trainer.num_epochs": 15, "data_loader.num_workers": 1}'
    argv = tune_argv(postgres, name, "--n-workers", "2", "--max-trials", "3", "--skip-if-exists")
    tune = start_tune([*argv, "-o", slow_with_loader_workers], workdir)
    try:
        wait_for(lambda: training_trial(postgres, name), "a trial to start training")
        os.killpg(tune.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        code = tune.wait(WAIT_SECONDS)
    finally:
        tune.kill()

    assert code == 130
    # Workers, their data-loader processes and fork servers end too (the last within seconds).
    wait_for(lambda: not running_processes_of_group(tune.pid), "every process of tune's group to end", timeout=15)
    log = next(workdir.glob("tune-*.log")).read_text()
    assert "allennlp tune: interrupted; running trials were recorded as FAIL" in log
    states = by_state(optuna.load_study(study_name=name, storage=postgres))
    assert "RUNNING" not in states and states["FAIL"]
    for trial in states["FAIL"]:
        assert "KeyboardInterrupt" in trial.user_attrs["fail_reason"]
    finished = {t.number: (workdir / "result" / f"trial_{t.number}" / "metrics.json").stat().st_mtime_ns
                for t in states.get("COMPLETE", [])}

    resumed = run_cli_process([*argv, "-o", FAST_TRIALS], cwd=workdir)

    assert resumed.code == 0, resumed
    states = by_state(optuna.load_study(study_name=name, storage=postgres))
    assert len(states["COMPLETE"]) == 3 and "RUNNING" not in states
    for number, mtime in finished.items():
        assert (workdir / "result" / f"trial_{number}" / "metrics.json").stat().st_mtime_ns == mtime


def test_devices_are_split_between_workers_and_reach_the_trainer() -> None:
    plans = plan_workers(None, [0, 1, 2, 3], devices_per_trial=2)
    assert [p.environment()["CUDA_VISIBLE_DEVICES"] for p in plans] == ["0,1", "2,3"]
    assert plans[0].config_overrides() == {"distributed.cuda_devices": [0, 1]}

    [single] = plan_workers(1, [3])
    values = {"embedding_dim": 8, "max_filter_size": 3, "num_filters": 4, "dropout": 0.1, "lr": 0.01,
              "optimizer": "adam"}
    params = load_params(str(CONFIG), values, with_overrides('{"trainer.num_epochs": 1}', single.config_overrides()))
    assert single.environment() == {"CUDA_VISIBLE_DEVICES": "3"}
    assert params["trainer"]["cuda_device"] == 0 and params["trainer"]["num_epochs"] == 1

    cpu = plan_workers(2, cpu_count=2)
    assert [p.environment() for p in cpu] == [{"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}] * 2


def test_trials_per_device_share_each_gpu_and_each_trial_is_told_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    plans = plan_workers(None, [0, 1], trials_per_device=2)
    assert [p.devices for p in plans] == [[0], [1], [0], [1]]  # round the GPUs: two workers spread over both
    assert [p.config_overrides() for p in plans] == [{"trainer.cuda_device": 0}] * 4
    assert [p.environment()["CUDA_VISIBLE_DEVICES"] for p in plan_workers(3, [0, 1], trials_per_device=2)] == \
        ["0", "1", "0"]

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")  # as SLURM sets it for a job's GPUs
    assert [p.environment()["CUDA_VISIBLE_DEVICES"] for p in plans] == ["4", "6", "4", "6"]

    with pytest.raises(ConfigurationError) as too_many:
        plan_workers(5, [0, 1], trials_per_device=2)
    assert too_many.value.message == ("--devices 0,1 holds 4 worker(s) of 1 GPU(s) each (2 trials per GPU), but "
                                      "--n-workers 5 was asked for; list more devices or lower --n-workers")
    with pytest.raises(ConfigurationError) as on_cpu:
        plan_workers(None, trials_per_device=2)
    assert on_cpu.value.message == ("--trials-per-device 2 shares each GPU of --devices between trials; name the "
                                    "GPUs with --devices (on CPU, --n-workers splits the cores)")


def test_more_workers_than_devices_is_refused(workdir: Path, storage: str, capsys: pytest.CaptureFixture) -> None:
    result = run_cli(tune_argv(storage, "cnn", "--devices", "0,1", "--n-workers", "3"), capsys)

    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "allennlp tune: error: --devices 0,1 holds 2 worker(s) of 1 GPU(s) each, but --n-workers 3 was asked "
        "for; list more devices or lower --n-workers"
    ]
    assert not (workdir / "study.db").exists() or not optuna.get_all_study_names(storage)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_trial_whose_heartbeat_stopped_on_another_machine_is_failed_and_retried(workdir: Path, kind: str) -> None:
    storage = f"sqlite:///{workdir / 'study.db'}" if kind == "sqlite" else str(workdir / "study.log")
    lost = optuna.create_study(study_name="cnn", storage=recoverable_storage(storage, 1), direction="maximize")
    trial = lost.ask()
    SearchSpace.from_file(str(HPARAMS)).suggest(trial)
    trial.storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, {"host": "another-machine", "pid": 1})
    trial.storage.record_heartbeat(trial._trial_id)  # its last heartbeat, then the machine went away

    study = tune(str(CONFIG), str(HPARAMS), str(workdir / "result"), study_name="cnn", storage=storage,
                 metrics="best_validation_accuracy", skip_if_exists=True, max_trials=2, heartbeat_interval=1,
                 overrides=FAST_TRIALS)

    states = by_state(study)
    assert [t.number for t in states["FAIL"]] == [trial.number]
    assert len(states["COMPLETE"]) == 2 and set(states) == {"FAIL", "COMPLETE"}
    [retry] = [t for t in states["COMPLETE"] if retried_trial_number(t) == trial.number]
    assert retry.params == trial.params
    assert WORKER_ATTR in retry.system_attrs and retry.system_attrs[WORKER_ATTR]["host"] != "another-machine"
    assert_trained_in_own_directory(retry, workdir)


def test_the_budget_counts_finished_running_and_queued_trials_in_number_order() -> None:
    study = optuna.create_study()
    for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING):
        study.add_trial(optuna.create_trial(state=state, value=0.5 if state == TrialState.COMPLETE else None))
    budget = StudyBudget(4)

    assert budget.finished(study) == 2 and not budget.reached(study)
    assert budget.has_room(study)  # the queued trial 4 takes the last place
    assert budget.admits(study, 4)  # before it: 0 COMPLETE, 1 PRUNED, 3 RUNNING (2 FAIL does not count)
    assert not budget.admits(study, 5)  # a new trial raced in after it: over the budget
    assert not StudyBudget(3).has_room(study)  # 2 finished + 1 running: a new trial must wait


def test_a_process_waiting_for_a_removed_lock_file_locks_the_new_one(tmp_path: Path) -> None:
    holder, waiter, other = (AskLock(str(tmp_path / "study.db"), "s") for _ in range(3))
    holder.acquire()
    waiting = threading.Thread(target=waiter.acquire)
    waiting.start()
    time.sleep(0.2)  # the waiter now waits on the file's lock
    os.remove(holder.path)  # as another process's remove() would, between two lockings
    holder.release()  # the waiter gets the removed file's lock: it must move to the current file
    waiting.join(timeout=10)

    assert not waiting.is_alive()
    assert os.stat(waiter.path).st_ino == os.fstat(waiter._file.fileno()).st_ino  # type: ignore[union-attr]
    other.remove()  # held by the waiter: left in place
    assert os.path.exists(waiter.path)
    waiter.remove()
    assert not os.path.exists(waiter.path)
