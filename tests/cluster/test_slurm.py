"""`allennlp tune --launcher slurm`: real job arrays on a real (one-node) SLURM cluster, a journal file.

The cluster's slurm.conf comes from ALLENNLP_OPTUNA_TEST_SLURM: `make test` starts a throwaway
cluster (`scripts/with-test-slurm`), and so does `.ci/run`. Without it the tests fail, saying how
to run them; they are never skipped. A trainer callback (`tests/training_probe.py`) stalls a trial
at the start of its epoch 1, after the checkpoint of epoch 0, so that a test can requeue or cancel
its task in the middle of the trial.
"""
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import optuna
import pytest
from optuna.trial import TrialState

from allennlp_optuna.cluster.job import read_task_settings
from allennlp_optuna.cluster.slurm import TaskState, array_tasks
from allennlp_optuna.core.trial_attrs import WORKER_ATTR
from allennlp_optuna.faults.recovery import retried_trial_number
from allennlp_optuna.study.settings import TuneSettings
from allennlp_optuna.study.storage import load_existing_study
from allennlp_optuna.tuning import plan_worker_processes
from tests.conftest import CONFIG, HPARAMS, CliResult, assert_command_refused, run_cli, run_cli_process
from tests.parallel.test_workers import (
    BARRIER_TRIALS,
    WAIT_SECONDS,
    assert_trained_in_own_directory,
    by_state,
    every_worker_trains,
    unique_name,
    wait_for,
)
from tests.training_probe import HOLD_ENV, STALL_ENV, probe_environment, trained_epochs

SLURM_ENV = "ALLENNLP_OPTUNA_TEST_SLURM"
JOURNAL = "study.log"
STALLED_TRIALS = json.dumps({"trainer.num_epochs": 3, "trainer.callbacks": [{"type": "test_training_probe"}]})


@pytest.fixture
def slurm(monkeypatch: pytest.MonkeyPatch) -> str:
    """The test cluster's slurm.conf, also in SLURM_CONF for every SLURM command the tests run."""
    conf = os.environ.get(SLURM_ENV)
    if not conf:
        pytest.fail(
            f"{SLURM_ENV} is not set: run the tests with `make test` (it starts a throwaway one-node SLURM), "
            "or `scripts/with-test-slurm .venv/bin/pytest ...`",
            pytrace=False,
        )
    monkeypatch.setenv("SLURM_CONF", conf)
    return conf


def slurm_argv(name: str, *extra: str) -> List[str]:
    return ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", JOURNAL, "--study-name", name,
            "--metrics", "best_validation_accuracy", "--launcher", "slurm", "--include-package",
            "tests.training_probe", *extra]


def submitted_job(output: str) -> str:
    match = re.search(r"^Submitted SLURM job (\d+):", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def journal_study(workdir: Path, name: str) -> optuna.Study:
    return load_existing_study(name, str(workdir / JOURNAL))


def start_tune(argv: List[str], cwd: Path, env: Dict[str, str], sigint_ignored: bool = False
               ) -> Tuple[subprocess.Popen, Path]:
    """`allennlp ARGV` in a session of its own (as a terminal runs it), its output in a log file; with
    ``sigint_ignored``, started with SIGINT ignored, as a shell without job control starts a background job."""
    log = cwd / f"tune-{uuid.uuid4().hex[:6]}.log"
    command = [sys.executable, "-m", "allennlp", *argv]
    if sigint_ignored:
        command = ["bash", "-c", 'trap "" INT; exec "$@"', "bash", *command]
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return process, log


def stalled_task(workdir: Path) -> Optional[Tuple[str, str]]:
    """``(run directory, ARRAYID_TASK)`` of the trial the probe stalled, once it has."""
    record = workdir / "stalled.txt"
    lines = record.read_text().split() if record.exists() else []
    return (lines[0], lines[1]) if len(lines) == 2 else None


def finished_tune(process: subprocess.Popen, log: Path) -> CliResult:
    try:
        code = process.wait(WAIT_SECONDS)
    finally:
        process.kill()
    return CliResult(code, log.read_text(), "")


def assert_nothing_left(job: str, study: optuna.Study) -> None:
    assert array_tasks(job) == []
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


def test_two_tasks_on_a_journal_file_finish_exactly_the_study_wide_budget(workdir: Path, slurm: str) -> None:
    name = unique_name()
    argv = slurm_argv(name, "--n-workers", "2", "--max-trials", "4", "-o", BARRIER_TRIALS)

    result = run_cli_process(argv, cwd=workdir, env=every_worker_trains(workdir, 2))

    assert result.code == 0, result
    job = submitted_job(result.out)
    study = journal_study(workdir, name)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    for trial in trials:
        assert_trained_in_own_directory(trial, workdir)
    assert len({t.system_attrs[WORKER_ATTR]["pid"] for t in trials}) == 2  # each task ran trials of its own
    assert f"SLURM job {job}: 2 RUNNING" in result.out and f"SLURM job {job}: every task has ended" in result.out
    assert f"Study '{name}' (maximize best_validation_accuracy): 4 trials: 4 COMPLETE" in result.out
    outputs = sorted(p.name for p in (workdir / "result" / "slurm").glob(f"{job}_*.out"))
    assert outputs == [f"{job}_0.out", f"{job}_1.out"]
    for output in outputs:
        assert "done: the study's budget is done" in (workdir / "result" / "slurm" / output).read_text()
    assert_nothing_left(job, study)


def test_a_requeued_task_continues_its_trial_from_the_checkpoint(workdir: Path, slurm: str) -> None:
    name = unique_name()
    tune, log = start_tune(slurm_argv(name, "--max-trials", "1", "-o", STALLED_TRIALS), workdir,
                           probe_environment(workdir, {STALL_ENV: "1"}))
    _, task = wait_for(lambda: stalled_task(workdir), "a trial to reach its epoch 1")

    job = task.split("_")[0]

    subprocess.run(["scontrol", "requeue", task], check=True)
    held = f"SLURM job {job}: 1 PENDING (BeginTime)"  # SLURM holds a requeued task (120 s on most clusters)
    wait_for(lambda: held in log.read_text(), "tune to say that the requeued task waits for its start")
    subprocess.run(["scontrol", "update", f"jobid={task}", "StartTime=now"], check=False)  # it may have started
    result = finished_tune(tune, log)

    assert result.code == 0, result
    stopped, retry = journal_study(workdir, name).get_trials()
    assert (stopped.state, retry.state) == (TrialState.FAIL, TrialState.COMPLETE)
    assert stopped.user_attrs["preempted"] == "SIGTERM"
    assert stopped.user_attrs["fail_reason"] == (
        "stopped by SIGTERM from SLURM (preemption, requeue, scancel or time limit); retried from its last checkpoint"
    )
    assert retried_trial_number(retry) == stopped.number and retry.params == stopped.params
    # The stopped trial trained epoch 0 (its checkpoint kept); the requeued task trained only 1 and 2.
    epochs = {os.path.relpath(run, workdir): e for run, e in trained_epochs(workdir).items()}
    assert epochs == {"result/trial_0": [0], "result/trial_1": [1, 2]}
    assert retry.user_attrs["resumed_from"] == str(workdir / "result" / "trial_0")
    assert_trained_in_own_directory(retry, workdir)
    assert "(restart 1)" in (workdir / "result" / "slurm" / f"{task}.out").read_text()
    assert f"Study '{name}' (maximize best_validation_accuracy): 2 trials: 1 COMPLETE, 1 FAIL" in result.out


def test_a_cancelled_task_has_its_trial_retried_by_another_task_from_the_checkpoint(
    workdir: Path, slurm: str
) -> None:
    name = unique_name()
    tune, log = start_tune(slurm_argv(name, "--n-workers", "2", "--max-trials", "3", "-o", STALLED_TRIALS), workdir,
                           probe_environment(workdir, {STALL_ENV: "1"}))
    stalled_run, task = wait_for(lambda: stalled_task(workdir), "a trial to reach its epoch 1")
    stalled_dir = str(workdir / stalled_run)

    subprocess.run(["scancel", task], check=True)
    result = finished_tune(tune, log)

    assert result.code == 0, result
    study = journal_study(workdir, name)
    states = by_state(study)
    assert set(states) == {"COMPLETE", "FAIL"} and len(states["COMPLETE"]) == 3
    [stopped] = states["FAIL"]
    assert stopped.user_attrs["serialization_dir"] == stalled_dir and stopped.user_attrs["preempted"] == "SIGTERM"
    [retry] = [t for t in states["COMPLETE"] if retried_trial_number(t) == stopped.number]
    assert retry.user_attrs["resumed_from"] == stalled_dir
    assert retry.system_attrs[WORKER_ATTR]["pid"] != stopped.system_attrs[WORKER_ATTR]["pid"]  # the other task's
    assert trained_epochs(workdir)[os.path.relpath(retry.user_attrs["serialization_dir"], workdir)] == [1, 2]
    assert_nothing_left(task.split("_")[0], study)


def test_detach_and_ctrl_c_leave_the_job_running_and_say_how_to_cancel_it(workdir: Path, slurm: str) -> None:
    name = unique_name()
    detached = run_cli_process(slurm_argv(name, "--max-trials", "1", "--detach", "-o", BARRIER_TRIALS), cwd=workdir,
                               env=probe_environment(workdir))

    assert detached.code == 0, detached
    job = submitted_job(detached.out)
    assert detached.out.splitlines()[1:] == [
        f"  follow: squeue -j {job}; result/report.html is rewritten after each trial",
        f"  report: allennlp tune-report --study-name {name} --storage {JOURNAL} -o report.html",
        f"  cancel: scancel {job}",
    ]
    wait_for(lambda: array_tasks(job) == [], "the detached job to end")
    assert [t.state for t in journal_study(workdir, name).get_trials()] == [TrialState.COMPLETE]

    hold = workdir / "hold"
    hold.touch()
    tune, log = start_tune(slurm_argv(name, "--max-trials", "2", "--skip-if-exists", "-o", BARRIER_TRIALS), workdir,
                           probe_environment(workdir, {HOLD_ENV: str(hold)}), sigint_ignored=True)
    wait_for(lambda: "Submitted SLURM job" in log.read_text(), "the job to be submitted")
    os.killpg(tune.pid, signal.SIGINT)  # Ctrl-C
    result = finished_tune(tune, log)

    assert result.code == 130
    following = submitted_job(result.out)
    assert result.out.strip().splitlines()[-1] == (
        f"allennlp tune: detached: SLURM job {following} goes on (follow it with squeue -j {following} and "
        f"result/report.html); cancel it with: scancel {following}"
    )
    assert array_tasks(following)  # still there: Ctrl-C cancelled nothing
    hold.unlink()
    wait_for(lambda: array_tasks(following) == [], "the job to end")
    assert [t.state for t in journal_study(workdir, name).get_trials()] == [TrialState.COMPLETE] * 2


def refusal_to_write(directory: str) -> str:
    """What the system says to creating something in ``directory`` (even root may not write in /sys)."""
    try:
        os.mkdir(os.path.join(directory, f"probe-{uuid.uuid4().hex[:6]}"))
    except OSError as error:
        return str(error.strerror)
    raise AssertionError(f"{directory} is writable here")


def slurm_jobs() -> List[str]:
    return subprocess.run(["squeue", "--noheader", "--format", "%i"], capture_output=True, text=True).stdout.split()


BAD_INPUT = {
    "sqlite": (["--storage", "sqlite:///study.db"],
               "--launcher slurm cannot share the SQLite storage sqlite:///study.db between its workers (SQLite on a "
               "shared filesystem such as NFS corrupts, and other nodes cannot reach this one's files): use a journal "
               "file on the shared filesystem (--storage /shared/study.log) or PostgreSQL "
               "(--storage postgresql://USER@HOST/DB)"),
    "in memory": (["--storage", "sqlite:///:memory:"], "--launcher slurm cannot share the SQLite storage "
                  "sqlite:///:memory: between its workers"),
    "journal in a missing directory": (["--storage", "missing/study.log"],
                                       "cannot use journal file missing/study.log: no directory {workdir}/missing"),
    "journal in an unwritable directory": (["--storage", "/sys/study.log"],
                                           "cannot write journal file /sys/study.log: {sys_refuses} (/sys)"),
    "unknown sbatch option": (["--sbatch=--bogus"], "sbatch refused the job (--sbatch '--bogus'): sbatch: "
                              "unrecognized option '--bogus'; Try \"sbatch --help\" for more information"),
    "unknown partition": (["--sbatch", "--partition=nonexistent --time=1"],
                          "sbatch refused the job (--sbatch '--partition=nonexistent --time=1'): sbatch: error: "
                          "invalid partition specified: nonexistent"),
    "an array of its own": (["--sbatch=--array=0-3"], "--sbatch cannot set --array: --n-workers sets the number "
                            "of tasks"),
    "devices": (["--devices", "0"], "--launcher slurm trains on the GPUs SLURM gives each task: ask for them with "
                "--sbatch \"--gres=gpu:N\" instead of --devices"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_line_and_submits_nothing(
    case: str, workdir: Path, slurm: str, capsys: pytest.CaptureFixture
) -> None:
    extra, message = BAD_INPUT[case]
    argv = slurm_argv("bad", "--n-trials", "1", *extra)
    if "--storage" in extra:
        argv = argv[: argv.index("--storage")] + argv[argv.index("--storage") + 2 :]
    before = slurm_jobs()

    result = run_cli(argv, capsys)

    expected = message.format(workdir=workdir, sys_refuses=refusal_to_write("/sys"))
    assert result.code == 2 and "Traceback" not in result.err, result
    line = result.err.strip().splitlines()[-1]
    assert line.startswith(f"allennlp tune: error: {expected}"), line
    assert sorted(p.name for p in workdir.iterdir()) == [".allennlp_plugins"]  # no study, no directory
    assert slurm_jobs() == before


def test_without_sbatch_nothing_is_written(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("PATH", str(workdir))  # no sbatch there

    result = run_cli(slurm_argv("bad", "--n-trials", "1"), capsys)

    assert_command_refused("tune", result, "--launcher slurm submits with SLURM's sbatch, which is not on this "
                           "machine's PATH; run tune where jobs are submitted (a login node), or leave out "
                           "--launcher slurm to run the workers here")
    assert sorted(p.name for p in workdir.iterdir()) == [".allennlp_plugins"]


def test_options_of_the_slurm_launcher_alone_are_refused_without_it(workdir: Path, capsys: pytest.CaptureFixture
                                                                     ) -> None:
    argv = ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", JOURNAL, "--detach"]

    assert_command_refused("tune", run_cli(argv, capsys), "--detach is an option of --launcher slurm")


def test_a_task_runs_trials_per_device_workers_on_each_of_its_gpus(workdir: Path) -> None:
    settings = TuneSettings.parse(str(CONFIG), str(HPARAMS), "result", storage=JOURNAL, launcher="slurm",
                                  n_workers=4, trials_per_device=2, max_trials=8, timeout=3600)
    (workdir / "task.json").write_text(json.dumps({
        "config_file": str(CONFIG), "search_space_file": str(HPARAMS), "serialization_dir": "result",
        "options": {**settings.options(), "launcher": "local", "n_workers": None, "max_trials": 8},
        "deadline": None,
    }))

    two_gpus = read_task_settings(str(workdir / "task.json"), gpus=2)
    cpu_only = read_task_settings(str(workdir / "task.json"), gpus=0)

    assert two_gpus is not None and cpu_only is not None
    assert [p.devices for p in plan_worker_processes(two_gpus)] == [[0], [1], [0], [1]]
    assert [p.config_overrides() for p in plan_worker_processes(two_gpus)] == [{"trainer.cuda_device": 0}] * 4
    assert [p.devices for p in plan_worker_processes(cpu_only)] == [[], []]  # two workers sharing the CPUs
    assert two_gpus.max_trials == cpu_only.max_trials == 8
    assert [p.index for p in plan_worker_processes(settings)] == [0, 1, 2, 3]  # the submission: four tasks


def test_pending_ranges_count_their_tasks() -> None:
    from allennlp_optuna.cluster.follow import describe_tasks

    tasks = [TaskState("42_[2-4,7]", "PENDING", "Resources"), TaskState("42_1", "RUNNING"),
             TaskState("42_0", "PENDING", "BeginTime")]

    assert describe_tasks("42", tasks) == "SLURM job 42: 1 PENDING (BeginTime), 4 PENDING (Resources), 1 RUNNING"
