"""Faults a user meets: an unreachable storage, a password in the storage URL, --timeout, SIGTERM,
--include-package. Each shows what the user sees: messages, files, the study's trials."""
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import optuna
import pytest

from allennlp_optuna.study import storage as study_module
from allennlp_optuna.core.redaction import redact_url, restore_password, storage_in_environment
from tests.conftest import CONFIG, HPARAMS, assert_command_refused, run_cli, run_cli_process, storage_error, write_json
from tests.parallel.test_workers import by_state, postgres, start_tune, training_trial, wait_for  # noqa: F401 (fixture)

PASSWORD = "pw-Xy9!s3cret"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a database server that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_a_storage_that_never_answers_is_given_up_after_the_bounded_wait(
    workdir: Path, silent_server: int, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(study_module, "STORAGE_CONNECT_TIMEOUT", 2)
    url = f"postgresql://tuner:{PASSWORD}@127.0.0.1:{silent_server}/studies"
    started = time.monotonic()

    result = run_cli(["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", url], capsys)

    assert time.monotonic() - started < 30
    assert_command_refused(
        "tune",
        result,
        f"cannot open storage postgresql://tuner:***@127.0.0.1:{silent_server}/studies: {storage_error(url)}",
    )
    assert PASSWORD not in result.out + result.err
    assert not (workdir / "result").exists()


def test_a_redacted_url_gets_its_password_back_only_inside_the_trials_environment() -> None:
    url = f"postgresql://tuner:{PASSWORD}@db.example.com:5432/studies"
    redacted = redact_url(url)

    assert redacted == "postgresql://tuner:***@db.example.com:5432/studies"
    assert restore_password(redacted) == redacted
    with storage_in_environment(url):
        assert restore_password(redacted) == url
        assert restore_password(redact_url("postgresql://other:pw@db/x")) == "postgresql://other:***@db/x"
    assert restore_password(redacted) == redacted
    assert redact_url("sqlite:///study.db") == "sqlite:///study.db"


def every_text(root: Path) -> Iterator[str]:
    """The text of every file under ``root``, and of every member of every archive there."""
    for path in root.rglob("*"):
        if path.is_file():
            yield f"{path}: " + path.read_bytes().decode("utf-8", "replace")
            if path.name.endswith(".tar.gz"):
                with tarfile.open(path) as archive:
                    for member in archive.getmembers():
                        handle = archive.extractfile(member)
                        if handle is not None:
                            yield f"{path}!{member.name}: " + handle.read().decode("utf-8", "replace")


def test_a_pruned_study_on_postgresql_with_a_password_writes_and_prints_it_nowhere(
    workdir: Path, postgres: str  # noqa: F811 (fixture)
) -> None:
    url = postgres.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")
    pruner = write_json(workdir / "optuna.json", {"pruner": {"type": "MedianPruner", "attributes": {"n_startup_trials": 1}}})
    name = f"secret_{uuid.uuid4().hex[:8]}"
    argv = ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", url, "--study-name", name,
            "--optuna-param-path", str(pruner), "--n-trials", "3", "--archive", "all",
            "--metrics", "best_validation_accuracy"]

    result = run_cli_process(argv, cwd=workdir)
    report = run_cli_process(["tune-report", "--storage", url, "--study-name", name, "-o", "page.html",
                              "--csv", "trials.csv"], cwd=workdir)
    best = run_cli_process(["best-params", "--storage", url, "--study-name", name], cwd=workdir)

    assert (result.code, report.code, best.code) == (0, 0, 0), (result, report, best)
    study = optuna.load_study(study_name=name, storage=postgres)
    assert all(t.intermediate_values for t in study.trials)  # the callback reached its trial with the password
    config = json.loads((workdir / "result" / "trial_0" / "config.json").read_text())
    assert config["trainer"]["callbacks"][0]["storage"] == redact_url(url)
    assert list((workdir / "result").glob("trial_*/model.tar.gz"))
    for text in every_text(workdir):
        assert PASSWORD not in text, text[:300]
    for command in (result, report, best):
        assert PASSWORD not in command.out + command.err
    for trial in study.trials:
        assert PASSWORD not in json.dumps(trial.user_attrs) + json.dumps(trial.system_attrs, default=str)


def test_timeout_stops_starting_trials_and_keeps_the_finished_ones(workdir: Path, storage: str) -> None:
    result = run_cli_process(["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", storage,
                              "--n-trials", "50", "--timeout", "1"], cwd=workdir)

    assert result.code == 0, result
    states = by_state(optuna.load_study(study_name="classifier", storage=storage))
    assert set(states) == {"COMPLETE"} and 1 <= len(states["COMPLETE"]) < 50
    for trial in states["COMPLETE"]:
        assert (workdir / "result" / f"trial_{trial.number}" / "metrics.json").is_file()


def test_sigterm_alone_fails_the_running_trial_and_exits_130(workdir: Path, storage: str) -> None:
    tune = start_tune(["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", storage,
                       "--n-trials", "3", "-o", '{"trainer.num_epochs": 30}'], workdir)
    try:
        wait_for(lambda: training_trial(storage, "classifier"), "a trial to start training")
        tune.send_signal(signal.SIGTERM)  # what a scheduler's preemption sends, to this process alone
        code = tune.wait(120)
    finally:
        tune.kill()

    assert code == 130
    log = next(workdir.glob("tune-*.log")).read_text()
    assert log.strip().splitlines()[-1] == (
        "allennlp tune: interrupted; running trials were recorded as FAIL, finished ones are kept. "
        "Rerun the same command with --skip-if-exists to resume the study."
    )
    states = by_state(optuna.load_study(study_name="classifier", storage=storage))
    assert set(states) == {"FAIL"}
    assert "KeyboardInterrupt" in states["FAIL"][0].user_attrs["fail_reason"]


def test_include_package_registers_what_the_config_uses(workdir: Path, storage: str) -> None:
    package = workdir / "my_callbacks"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from allennlp.training import TrainerCallback\n\n\n"
        "@TrainerCallback.register('leave_a_mark')\n"
        "class LeaveAMark(TrainerCallback):\n"
        "    def on_start(self, trainer, is_primary=True, **kwargs):\n"
        "        open(self.serialization_dir + '/marked', 'w').close()\n"
    )
    overrides = '{"trainer": {"callbacks": [{"type": "leave_a_mark"}]}}'

    result = run_cli_process(["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", storage,
                              "--n-trials", "1", "--include-package", "my_callbacks", "-o", overrides],
                             cwd=workdir, env={"PYTHONPATH": f"{workdir}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})

    assert result.code == 0, result
    assert (workdir / "result" / "trial_0" / "marked").is_file()
    assert [t.state.name for t in optuna.load_study(study_name="classifier", storage=storage).trials] == ["COMPLETE"]
