"""A journal file as the storage (`--storage study.log`): workers share it, survive a kill, and every command reads it."""
import json
from pathlib import Path

import pytest

from allennlp_optuna.faults.recovery import retried_trial_number
from allennlp_optuna.study.storage import load_existing_study
from tests.conftest import CONFIG, HPARAMS, assert_command_refused, read_json, run_cli, run_cli_process
from tests.parallel.test_workers import assert_trained_in_own_directory, by_state
from tests.training_probe import KILL_ENV, probe_environment

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

KILLED_TRIALS = json.dumps({"trainer.num_epochs": 2, "trainer.callbacks": [{"type": "test_training_probe"}]})


def test_two_workers_on_a_journal_file_survive_a_kill_and_every_command_reads_it(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", "study.log", "--study-name", "journal",
            "--metrics", "best_validation_accuracy", "--n-workers", "2", "--max-trials", "3", "-o", KILLED_TRIALS,
            "--include-package", "tests.training_probe"]

    # The first trial to reach its epoch 1 is SIGKILLed with its worker, as the out-of-memory killer would.
    tuned = run_cli_process(argv, cwd=workdir, env=probe_environment(workdir, {KILL_ENV: "1"}))

    assert tuned.code == 0, tuned
    assert "was killed by SIGKILL; replacing it" in tuned.err
    study = load_existing_study("journal", str(workdir / "study.log"))
    states = by_state(study)
    assert set(states) == {"COMPLETE", "FAIL"} and len(states["COMPLETE"]) == 3
    [killed] = states["FAIL"]
    [retry] = [t for t in states["COMPLETE"] if retried_trial_number(t) == killed.number]
    assert retry.params == killed.params and retry.user_attrs["resumed_from"] == killed.user_attrs["serialization_dir"]
    for trial in states["COMPLETE"]:
        assert_trained_in_own_directory(trial, workdir)
    best = max(states["COMPLETE"], key=lambda t: (t.value, -t.number))
    fresh = next(t for t in states["COMPLETE"] if t is not retry)  # a resumed training does not replay exactly

    values = run_cli(["best-params", "--storage", "study.log", "--format", "json"], capsys)
    report = run_cli(["tune-report", "--storage", "study.log", "-o", "report.html", "--csv", "trials.csv"], capsys)
    retrained = run_cli(["retrain", str(CONFIG), "-s", "again", "--storage", "study.log", "--trial", str(fresh.number),
                         "-o", json.dumps({"trainer.num_epochs": 2})], capsys)

    assert values.code == 0 and json.loads(values.out) == best.params, values
    assert report.code == 0 and (workdir / "report.html").exists(), report
    assert len((workdir / "trials.csv").read_text().splitlines()) == 1 + 4  # the header, then every trial
    assert retrained.code == 0, retrained
    assert read_json(workdir / "again" / "metrics.json")["best_validation_accuracy"] == fresh.value


def test_a_reading_command_refuses_a_journal_file_that_does_not_exist(workdir: Path, capsys: pytest.CaptureFixture
                                                                      ) -> None:
    result = run_cli(["best-params", "--storage", "journal:missing"], capsys)

    assert_command_refused("best-params", result, f"storage journal:missing does not exist: no file "
                           f"{workdir / 'missing'}; pass the --storage that allennlp tune used")
    assert not (workdir / "missing").exists()
