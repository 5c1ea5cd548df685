"""What `allennlp tune` prints: the study (header, trials, status, one done line), not AllenNLP's log."""
import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import List

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from allennlp_optuna.core.redaction import redact_url as mask_password
from allennlp_optuna.output.view import StudyDescription, StudyView
from allennlp_optuna.study.objectives import Objectives
from allennlp_optuna.output.summary import allennlp_command
from tests.conftest import CONFIG, HPARAMS, run_cli, run_cli_process, validation_metrics

FAST_TRIALS = '{"trainer.num_epochs": 1}'
CONTROL_CODES = re.compile(r"[\x1b\r]")
TRAINING_INFO = "INFO - allennlp.training"
FINISHED = re.compile(r"^trial (\d+) (COMPLETE|PRUNED|FAIL)")


def tune_argv(storage: str, *extra: str) -> List[str]:
    return ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", storage, "--study-name", "cnn",
            "--metrics", "best_validation_accuracy", "-o", FAST_TRIALS, *extra]


def finished_lines(out: str) -> List[str]:
    return [line for line in out.splitlines() if FINISHED.match(line)]


def test_a_short_study_prints_its_header_trials_one_done_line_and_what_to_do_next(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    result = run_cli(tune_argv("sqlite:///cnn.db", "--n-trials", "2"), capsys)

    assert result.code == 0, result
    study = optuna.load_study(study_name="cnn", storage="sqlite:///cnn.db")
    lines = result.out.splitlines()
    assert lines[:3] == [
        "Study 'cnn' in sqlite:///cnn.db: maximize best_validation_accuracy",
        "  sampler TPESampler, pruner none; 2 trials, 1 worker",
        "  trials in result/trial_N (AllenNLP's log: trial_N/out.log); report result/report.html",
    ]
    for trial in study.trials:
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        assert f"trial {trial.number} started: {params}" in lines
    assert [line.split(" (")[0] for line in finished_lines(result.out)] == [
        f"trial {t.number} COMPLETE: best_validation_accuracy={t.value:.4g}" for t in study.trials
    ]
    # A status line follows each poll that saw trials finish; trials this short may both finish
    # between two polls, and then the done line alone gives the counts.
    for status in [line for line in lines if re.match(r"\d of 2 trials \| ", line)]:
        assert f"{status[0]} COMPLETE" in status, status
    done = [line for line in lines if line.startswith("done:")]
    assert len(done) == 1 and re.fullmatch(
        rf"done: 2 trials in \d+s \(2 COMPLETE\); best best_validation_accuracy={study.best_value:.4g} "
        rf"\(trial {study.best_trial.number}\)",
        done[0],
    )
    here = f"cd {workdir} && {allennlp_command()}"
    assert lines[-4:] == [
        f"Report: {workdir / 'result' / 'report.html'}",
        f"Best values:  {here} best-params --study-name cnn --storage sqlite:///cnn.db",
        f"Retrain best: {here} retrain {CONFIG} -s result/best_model --study-name cnn --storage sqlite:///cnn.db "
        f"-o '{FAST_TRIALS}'",
        f"New report:   {here} tune-report --study-name cnn --storage sqlite:///cnn.db",
    ]
    assert not CONTROL_CODES.search(result.out + result.err)  # captured: not a terminal
    console = result.out + result.err
    assert TRAINING_INFO not in console and "Trial 0 finished" not in console  # AllenNLP's and Optuna's INFO
    log = (workdir / "result" / "trial_0" / "out.log").read_text(encoding="utf-8")
    assert "INFO - allennlp.training.gradient_descent_trainer - Beginning training." in log
    assert "INFO - allennlp.common.params - model.type = basic_classifier" in log


def test_the_next_commands_work_pasted_into_a_new_shell_anywhere(workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    tuned = run_cli_process(tune_argv("sqlite:///cnn.db", "--n-trials", "2"), cwd=workdir)
    assert tuned.code == 0, tuned
    commands = [line.split(":", 1)[1].strip() for line in tuned.out.splitlines()[-3:]]
    elsewhere = tmp_path_factory.mktemp("elsewhere")  # no study, no virtualenv on PATH
    shell = {"PATH": "/usr/bin:/bin", "HOME": str(elsewhere), "LANG": "C.UTF-8"}

    ran = [subprocess.run(["bash", "-c", command], cwd=elsewhere, env=shell, capture_output=True, text=True)
           for command in commands]

    assert [r.returncode for r in ran] == [0, 0, 0], [r.stderr[-2000:] for r in ran]
    study = optuna.load_study(study_name="cnn", storage=f"sqlite:///{workdir / 'cnn.db'}")
    assert ran[0].stdout.strip() == " ".join(f"{k}={v}" for k, v in study.best_params.items())
    assert validation_metrics(workdir / "result" / "best_model") == validation_metrics(
        workdir / "result" / f"trial_{study.best_trial.number}")
    assert ran[2].stdout.strip() == f"Wrote {workdir / 'result' / 'report.html'}"


def test_verbose_streams_allennlps_log_to_the_console(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    result = run_cli(tune_argv("sqlite:///cnn.db", "--n-trials", "1", "--verbose"), capsys)

    assert result.code == 0, result
    assert "INFO - allennlp.training.gradient_descent_trainer - Beginning training." in result.out
    assert len(finished_lines(result.out)) == 1


def test_two_workers_print_one_status_of_the_whole_study(workdir: Path) -> None:
    result = run_cli_process(tune_argv("sqlite:///cnn.db", "--n-trials", "4", "--n-workers", "2"), cwd=workdir)

    assert result.code == 0, result
    study = optuna.load_study(study_name="cnn", storage="sqlite:///cnn.db")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    lines = result.out.splitlines()
    assert "  sampler TPESampler, pruner none; 4 trials, 2 workers" in lines
    assert sorted(int(FINISHED.match(line).group(1)) for line in finished_lines(result.out)) == [0, 1, 2, 3]
    counts = [int(line.split(" of ")[0]) for line in lines if re.match(r"^\d+ of 4 trials \|", line)]
    assert counts and counts == sorted(counts) and counts[-1] <= 4  # one count for the study, never per worker
    done = [line for line in (result.out + result.err).splitlines() if "done" in line]
    assert len(done) == 1 and done[0].startswith("done: 4 trials in ") and "(4 COMPLETE)" in done[0]
    assert not CONTROL_CODES.search(result.out + result.err)  # a pipe: plain lines
    assert TRAINING_INFO not in result.out + result.err


def test_a_storage_password_is_never_printed() -> None:
    assert mask_password("postgresql://tuner:s3cret@db:5432/studies") == "postgresql://tuner:***@db:5432/studies"
    assert mask_password("sqlite:///allennlp_optuna.db") == "sqlite:///allennlp_optuna.db"
    description = StudyDescription("s", "mysql://u:pw@host/db", Objectives.parse("acc", "maximize"), "TPESampler", "none", "r", "r/x")
    assert "pw" not in "\n".join(description.header())


def test_time_left_counts_every_worker_of_the_study() -> None:
    start = datetime(2026, 1, 1, 12, 0, 0)
    distributions = {"x": FloatDistribution(0, 1)}
    trials = [  # two workers: trials 0 and 1 ran side by side for 10 s, then 2 and 3 started
        create_trial(params={"x": 0.5}, distributions=distributions, value=v, state=TrialState.COMPLETE)
        for v in (0.8, 0.6)
    ]
    for number, trial in enumerate(trials):
        trial.number = number
        trial.datetime_start, trial.datetime_complete = start, start + timedelta(seconds=10)
    description = StudyDescription("s", "sqlite:///s.db", Objectives.parse("acc", "maximize"), "TPESampler", "none", "r", "r/x",
                                   n_trials=8, n_workers=2)
    view = StudyView(description, "validation_acc", started=start.timestamp())
    view.update(trials)

    assert view.status_line(start.timestamp() + 10) == (
        "2 of 8 trials | 2 COMPLETE | best 0.8 (trial 0) | 10s elapsed, about 30s left"
    )
