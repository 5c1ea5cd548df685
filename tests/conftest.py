"""Shared fixtures: the tiny classifier config, its search space, and ways to run the CLI."""
import hashlib
import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import optuna
import pytest
from allennlp.commands import main as allennlp_main

from allennlp_optuna.trial.executor import own_log_handlers

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "test_fixtures"
CONFIG = FIXTURES / "config" / "classifier.jsonnet"
HPARAMS = FIXTURES / "config" / "hparams.json"


# AllenNLP's training replaces the root logger's handlers; this puts the test runner's back.
restored_root_logging = own_log_handlers


@pytest.fixture(autouse=True)
def restore_root_logging() -> Iterator[None]:
    """Each test starts with the logging set-up of the one before it: the root logger's handlers, and
    every logger's level and ``disabled`` flag (``allennlp evaluate`` disables ``allennlp.common.params``
    for good, which would empty later trials' ``out.log`` of their parameters)."""
    loggers = [logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    states = [(logger, logger.level, logger.disabled) for logger in loggers]
    with restored_root_logging():
        yield
    for logger, level, disabled in states:
        logger.setLevel(level)
        logger.disabled = disabled


def assert_command_refused(command: str, result: "CliResult", message: str) -> None:
    """`allennlp COMMAND` refused bad input: exit 2, no traceback, one `error:` line last."""
    assert result.code == 2, result
    assert "Traceback" not in result.err
    assert result.err.strip().splitlines()[-1] == f"allennlp {command}: error: {message}"


def assert_refused_leaving_all_as_it_was(
    command: str, argv: List[str], message: str, capsys: pytest.CaptureFixture, roots: Sequence[Path], storage: str
) -> "CliResult":
    """`allennlp ARGV` is refused (:func:`assert_command_refused`) and leaves every file under ``roots`` and
    every study of ``storage`` as they were (:func:`snapshot`)."""
    before = snapshot(*roots, storage=storage)

    result = run_cli(argv, capsys)

    assert_command_refused(command, result, message)
    assert snapshot(*roots, storage=storage) == before
    return result


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh directory with `.allennlp_plugins`, as a user's project has; tests run in it."""
    (tmp_path / ".allennlp_plugins").write_text("allennlp_optuna\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def storage(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'study.db'}"


def storage_error(url: str) -> str:
    """The first line of what the installed SQLAlchemy and database driver say when ``url`` cannot be opened.

    Their words change between releases (SQLAlchemy 2.1 drives ``postgresql://`` with psycopg 3,
    2.0 with psycopg2; URL parsing errors are worded anew), so tests take the library's part of
    a message from the installed stack and check the plugin's part of the line literally.
    """
    import sqlalchemy

    from allennlp_optuna.study.storage import engine_options

    try:
        sqlalchemy.create_engine(url, **(engine_options(url) or {})).connect().close()
    except Exception as error:
        return str(error).strip().splitlines()[0]
    raise AssertionError(f"{url} opened")


Snapshot = Tuple[Dict[str, str], Dict[str, Any]]


def snapshot(*roots: Path, storage: str) -> Snapshot:
    """What a refused command must leave as it was: every file under ``roots`` (its content hash; of an SQLite
    database, which opening it may touch, that it is there), and every study of ``storage`` (its directions,
    user attributes and trials)."""
    files = {
        str(path): "database" if path.suffix == ".db" else hashlib.sha256(path.read_bytes()).hexdigest()
        for root in roots
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
    studies = {
        summary.study_name: (
            [d.name for d in study.directions], study.user_attrs,
            [(t.number, t.state.name, t.values) for t in study.trials],
        )
        for summary in optuna.get_all_study_summaries(storage)
        for study in [optuna.load_study(study_name=summary.study_name, storage=storage)]
    }
    return files, studies


def write_json(path: Path, content: object) -> Path:
    path.write_text(json.dumps(content))
    return path


def read_json(path: Path) -> Dict:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


METRIC_CHOICES = (
    "best_epoch, best_validation_accuracy, best_validation_loss, epoch, peak_worker_0_memory_MB, training_accuracy, "
    "training_loss, training_worker_0_memory_MB, validation_accuracy, validation_loss"
)
"""The numeric keys of a trial's metrics after the first epoch of CONFIG, as the --metrics check lists them."""


VALIDATION_KEYS = ("best_epoch", "best_validation_accuracy", "best_validation_loss", "validation_loss")
"""The metrics that the same values and seeds reproduce exactly (not durations or memory)."""


def validation_metrics(serialization_dir: Path) -> Dict:
    """The :data:`VALIDATION_KEYS` of ``serialization_dir/metrics.json``."""
    metrics = read_json(serialization_dir / "metrics.json")
    return {key: metrics[key] for key in VALIDATION_KEYS}


def run_cli(argv: List[str], capsys: pytest.CaptureFixture) -> "CliResult":
    """Run `allennlp ARGV` in this process (as the console script does); capture its output."""
    old_argv = sys.argv
    sys.argv = ["allennlp", *argv]
    code = 0
    try:
        allennlp_main(prog="allennlp")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = old_argv
    out, err = capsys.readouterr()
    return CliResult(code, out, err)


def run_cli_process(argv: List[str], cwd: Path, env: Optional[Dict[str, str]] = None) -> "CliResult":
    """Run `allennlp ARGV` as a separate process, as a user's shell does."""
    completed = subprocess.run(
        [sys.executable, "-m", "allennlp", *argv],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )
    assert_no_fork_with_threads(completed.stderr)
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


FORK_WITH_THREADS = "use of fork() may lead to deadlocks"
"""Python 3.12+'s warning that a process running threads forks (the child can deadlock). It cannot
be made an error (``os.fork`` discards the exception), so the tests look for it instead."""
FORKS_WITH_THREADS: List[str] = []


def pytest_warning_recorded(warning_message: warnings.WarningMessage, nodeid: str, location: Any) -> None:
    if FORK_WITH_THREADS in str(warning_message.message):
        FORKS_WITH_THREADS.append(nodeid or str(location))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run if a test forked a process that runs threads (see :data:`FORK_WITH_THREADS`)."""
    if FORKS_WITH_THREADS:
        print(f"\nforked while running threads (Python 3.12+ warned) in: {', '.join(FORKS_WITH_THREADS)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def assert_no_fork_with_threads(stderr: str) -> None:
    """An `allennlp` process a test ran did not fork while running threads."""
    assert FORK_WITH_THREADS not in stderr, f"the process forked while running threads:\n{stderr[-3000:]}"


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"


class TunedStudy:
    """A finished three-trial study of CONFIG (seeded TPE), shared read-only by tests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = f"sqlite:///{root / 'tuned.db'}"
        self.result = root / "result"

    def load(self) -> "optuna.Study":
        return optuna.load_study(study_name="classifier", storage=self.storage)


@pytest.fixture(scope="session")
def tuned_study(tmp_path_factory: pytest.TempPathFactory) -> TunedStudy:
    """Tune CONFIG once per session: 3 COMPLETE trials in DIR/result, study 'classifier'."""
    from allennlp_optuna.tuning import tune

    tuned = TunedStudy(tmp_path_factory.mktemp("tuned"))
    sampler = write_json(tuned.root / "optuna.json", {"sampler": {"type": "TPESampler", "attributes": {"seed": 1}}})
    with restored_root_logging():
        tune(str(CONFIG), str(HPARAMS), str(tuned.result), storage=tuned.storage,
             metrics="best_validation_accuracy", n_trials=3, optuna_param_path=str(sampler))
    return tuned
