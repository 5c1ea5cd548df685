"""Crashed workers: who is recognised as dead, and how often a killed worker is replaced."""
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any, List

import optuna
import pytest

from allennlp.common.checks import ConfigurationError
from allennlp_optuna import workers
from allennlp_optuna.core.compat import trial_id
from allennlp_optuna.faults.identity import this_process
from allennlp_optuna.faults.recovery import fail_orphaned_trials, recoverable_storage
from allennlp_optuna.core.trial_attrs import WORKER_ATTR
from tests.conftest import CONFIG, HPARAMS, run_cli

pytestmark = [
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
    pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize"),
]


def ended_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.fixture
def study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(study_name="faults", storage=recoverable_storage(f"sqlite:///{tmp_path / 'f.db'}"))


def running_trial_of(study: optuna.Study, worker: dict) -> int:
    trial = study.ask()
    trial.storage.set_trial_system_attr(trial_id(trial), WORKER_ATTR, worker)
    return trial.number


def test_a_trial_of_another_machine_with_the_same_host_name_is_not_failed(study: optuna.Study) -> None:
    pid = ended_pid()
    elsewhere = {"host": socket.gethostname(), "space": "another-boot-id/pid:[4026531836]", "pid": pid, "started": 1}
    here = {**this_process(), "pid": pid}
    other_machines = running_trial_of(study, elsewhere)
    ours = running_trial_of(study, here)

    failed = fail_orphaned_trials(study)

    assert failed == [ours]
    states = {t.number: t.state.name for t in study.trials if t.number in (other_machines, ours)}
    assert states == {other_machines: "RUNNING", ours: "FAIL"}
    assert study.trials[ours].user_attrs["fail_reason"] == (
        f"worker process {pid} on {socket.gethostname()} died while the trial ran"
    )


def test_a_live_process_of_this_machine_keeps_its_trial(study: optuna.Study) -> None:
    number = running_trial_of(study, this_process())

    assert fail_orphaned_trials(study) == []
    assert study.trials[number].state.name == "RUNNING"


def test_killed_workers_are_replaced_with_growing_waits_then_the_run_stops_with_advice(
    study: optuna.Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: List[float] = []
    monkeypatch.setattr(workers.time, "sleep", waits.append)
    context = workers.worker_context()
    started: List[Any] = []

    def start_killed_worker(index: int) -> Any:
        process = context.Process(target=signal.raise_signal, args=(signal.SIGKILL,))
        process.start()
        started.append(process)
        return process

    policy = workers.RestartPolicy(max_restarts=3, first_wait=1.0, longest_wait=3.0)
    with pytest.raises(ConfigurationError) as stopped:
        workers._supervise(study, {0: start_killed_worker(0)}, start_killed_worker, policy)

    assert waits == [1.0, 2.0, 3.0]
    assert len(started) == 4
    assert stopped.value.message == (
        "worker 0 was killed by SIGKILL after 3 killed worker(s) had been replaced (--max-worker-restarts 3); "
        "its trial is FAIL and will be retried. Repeated kills are usually the out-of-memory killer (see `dmesg`): "
        "lower the batch size or --n-workers, then rerun with --skip-if-exists to resume, or raise "
        "--max-worker-restarts"
    )


def test_a_negative_restart_count_is_refused(tmp_path: Path) -> None:
    from allennlp_optuna.study.settings import TuneSettings

    with pytest.raises(ConfigurationError) as refused:
        TuneSettings.parse("c.jsonnet", "h.json", str(tmp_path), max_worker_restarts=-1)
    assert refused.value.message == "--max-worker-restarts must be 0 or more, got -1"


CHECKPOINTS = ("model_state_e", "training_state_e")


@pytest.mark.parametrize("keep", [False, True], ids=["removed", "--keep-checkpoints"])
def test_a_finished_trial_keeps_its_model_but_not_its_epoch_checkpoints(
    keep: bool, workdir: Path, storage: str, capsys: pytest.CaptureFixture
) -> None:
    argv = ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", storage, "--n-trials", "2"]

    result = run_cli([*argv, "--keep-checkpoints"] if keep else argv, capsys)

    assert result.code == 0, result
    for trial_dir in sorted((workdir / "result").glob("trial_*")):
        names = {path.name for path in trial_dir.iterdir()}
        assert {"best.th", "config.json", "vocabulary", "metrics.json", "out.log"} <= names
        assert any(name.startswith(CHECKPOINTS) for name in names) == keep, names
    assert sum(1 for _ in (workdir / "result").glob("trial_*/model.tar.gz")) == 1  # the best trial's archive
