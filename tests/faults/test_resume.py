"""Resume, not restart: the retry of a killed trial continues from that trial's last epoch checkpoint.

A trainer callback (``tests/training_probe.py``) SIGKILLs the worker at a chosen epoch, as the
out-of-memory killer would, and records which epochs each run really trained.
"""
import json
import os
from pathlib import Path
from typing import Dict, List, Tuple

import optuna
import pytest
import torch
from allennlp.common import Params
from optuna.trial import TrialState

from allennlp_optuna.faults.recovery import retried_trial_number
from allennlp_optuna.faults.resume import RunState, adopt_run, completed_epochs, finished_run, incomplete_checkpoints
from tests.conftest import CONFIG, CliResult, HPARAMS, read_json, run_cli, run_cli_process, validation_metrics, write_json
from tests.parallel.test_workers import by_state, postgres, unique_name  # noqa: F401 (postgres is a fixture)
from tests.training_probe import KILL_ENV, PROBE_ENV, probe_environment, trained_epochs

VALUES = {"embedding_dim": 8, "max_filter_size": 3, "num_filters": 4, "dropout": 0.0, "lr": 0.05, "optimizer": "adam"}
"""No dropout: the replayed epochs draw no random masks, so the resumed run can match exactly."""
CHECKPOINTS = ("model_state_e", "training_state_e")


def tune_argv(storage: str, name: str, result: str, num_epochs: int, *extra: str) -> List[str]:
    # Validation in order: replayed epochs skip validation, whose shuffling would draw from Python's
    # random generator (see allennlp_optuna.faults.resume).
    overrides = {"trainer.num_epochs": num_epochs, "trainer.callbacks": [{"type": "test_training_probe"}],
                 "validation_data_loader": {"batch_size": 16, "shuffle": False}}
    return ["tune", str(CONFIG), str(HPARAMS), "-s", result, "--storage", storage, "--study-name", name,
            "--metrics", "best_validation_accuracy", "--include-package", "tests.training_probe",
            "-o", json.dumps(overrides), "--max-trials", "1", *extra]


@pytest.fixture
def probe(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Dict[str, str]:
    """The environment of a probed `allennlp` process (the tests package importable, records in workdir)."""
    monkeypatch.setenv(PROBE_ENV, str(workdir))
    return probe_environment(workdir)


def epochs_by_run(workdir: Path) -> Dict[str, List[int]]:
    return {os.path.relpath(run, workdir): epochs for run, epochs in trained_epochs(workdir).items()}


def kill_then_resume(
    workdir: Path, storage: str, probe: Dict[str, str], kill_at: str, *argv: str
) -> Tuple[optuna.Study, CliResult]:
    """Tune until the probe kills the worker at ``kill_at``, then rerun with --skip-if-exists."""
    killed = run_cli_process(list(argv), cwd=workdir, env={**probe, KILL_ENV: kill_at})
    assert killed.code == -9, killed  # SIGKILL
    [trial] = optuna.load_study(study_name=argv[argv.index("--study-name") + 1], storage=storage).trials
    assert trial.state == TrialState.RUNNING

    resumed = run_cli_process([*argv, "--skip-if-exists"], cwd=workdir, env=probe)

    assert resumed.code == 0, resumed
    return optuna.load_study(study_name=argv[argv.index("--study-name") + 1], storage=storage), resumed


def test_a_trial_killed_at_epoch_2_of_4_is_retried_from_its_checkpoint_and_matches_an_uninterrupted_run(
    workdir: Path, storage: str, probe: Dict[str, str], capsys: pytest.CaptureFixture
) -> None:
    values = write_json(workdir / "values.json", VALUES)
    # A pruner that never prunes: every epoch reports an intermediate value.
    reporting = write_json(workdir / "optuna.json", {"pruner": {"type": "MedianPruner",
                                                                "attributes": {"n_startup_trials": 100}}})
    extra = ("--enqueue-trial", str(values), "--optuna-param-path", str(reporting))
    argv = tune_argv(storage, "resumed", "result", 4, *extra)

    study, resumed = kill_then_resume(workdir, storage, probe, "2", *argv)

    killed, retry = study.trials
    assert (killed.state, retry.state) == (TrialState.FAIL, TrialState.COMPLETE)
    assert retried_trial_number(retry) == killed.number and retry.params == killed.params == VALUES
    # The killed trial trained epochs 0 and 1 and died in epoch 2; its retry trained only 2 and 3.
    assert epochs_by_run(workdir) == {"result/trial_0": [0, 1], "result/trial_1": [2, 3]}
    retry_dir = workdir / "result" / "trial_1"
    resuming = f"Resuming the training of {workdir / 'result' / 'trial_0'} in {retry_dir} after its epoch 1."
    assert resuming in resumed.err and "Traceback" not in resumed.err and "is not empty" not in resumed.err
    assert retry.value == read_json(retry_dir / "metrics.json")["best_validation_accuracy"]
    assert retry.user_attrs["resumed_from"] == str(workdir / "result" / "trial_0")
    for trial_dir in (workdir / "result" / "trial_0", retry_dir):  # the retry ended: no checkpoint is left
        assert not [p.name for p in trial_dir.iterdir() if p.name.startswith(CHECKPOINTS)]

    uninterrupted = run_cli(tune_argv(storage, "uninterrupted", "result_uninterrupted", 4, *extra), capsys)

    assert uninterrupted.code == 0, uninterrupted
    assert validation_metrics(retry_dir) == validation_metrics(workdir / "result_uninterrupted" / "trial_0")
    [whole] = optuna.load_study(study_name="uninterrupted", storage=storage).trials
    assert whole.value == retry.value
    # The replayed epochs 0 and 1 are reported too (from the copied metrics_epoch_E.json), as the killed trial did.
    assert retry.intermediate_values == whole.intermediate_values and sorted(whole.intermediate_values) == [0, 1, 2, 3]
    assert {step: killed.intermediate_values[step] for step in (0, 1)} == {s: whole.intermediate_values[s] for s in (0, 1)}


def test_a_repeated_trial_killed_in_its_second_seed_reads_the_first_and_resumes_the_second(
    workdir: Path, storage: str, probe: Dict[str, str]
) -> None:
    values = write_json(workdir / "values.json", {**VALUES, "dropout": 0.2})
    argv = tune_argv(storage, "repeated", "result", 3, "--seeds", "2", "--enqueue-trial", str(values))

    study, _ = kill_then_resume(workdir, storage, probe, "1:seed_1", *argv)

    killed, retry = study.trials
    assert (killed.state, retry.state) == (TrialState.FAIL, TrialState.COMPLETE)
    assert epochs_by_run(workdir) == {
        "result/trial_0/seed_0": [0, 1, 2],
        "result/trial_0/seed_1": [0],
        "result/trial_1/seed_1": [1, 2],  # seed_0 had finished: read, not trained again
    }
    runs = [read_json(workdir / "result" / "trial_1" / run / "metrics.json")["best_validation_accuracy"]
            for run in ("seed_0", "seed_1")]
    assert runs[0] == read_json(workdir / "result" / "trial_0" / "seed_0" / "metrics.json")["best_validation_accuracy"]
    assert retry.user_attrs["runs"] == [{"run": "seed_0", "values": [runs[0]]}, {"run": "seed_1", "values": [runs[1]]}]
    assert retry.value == pytest.approx(sum(runs) / 2)
    assert retry.user_attrs["resumed_from"] == str(workdir / "result" / "trial_0")


def test_a_repeated_trial_killed_in_its_first_seed_resumes_it_and_trains_the_second_fresh(
    workdir: Path, storage: str, probe: Dict[str, str]
) -> None:
    values = write_json(workdir / "values.json", {**VALUES, "dropout": 0.2})
    argv = tune_argv(storage, "repeated", "result", 3, "--seeds", "2", "--enqueue-trial", str(values))

    study, resumed = kill_then_resume(workdir, storage, probe, "1:seed_0", *argv)

    killed, retry = study.trials
    assert (killed.state, retry.state) == (TrialState.FAIL, TrialState.COMPLETE)
    assert epochs_by_run(workdir) == {
        "result/trial_0/seed_0": [0],
        "result/trial_1/seed_0": [1, 2],
        "result/trial_1/seed_1": [0, 1, 2],  # the kill came before it: nothing to resume
    }
    assert "Traceback" not in resumed.err
    runs = [read_json(workdir / "result" / "trial_1" / run / "metrics.json")["best_validation_accuracy"]
            for run in ("seed_0", "seed_1")]
    assert retry.value == pytest.approx(sum(runs) / 2)


def test_a_retry_with_another_config_trains_from_scratch_and_says_why(
    workdir: Path, storage: str, probe: Dict[str, str]
) -> None:
    values = write_json(workdir / "values.json", VALUES)
    argv = tune_argv(storage, "changed", "result", 4, "--enqueue-trial", str(values))
    killed = run_cli_process(argv, cwd=workdir, env={**probe, KILL_ENV: "2"})
    assert killed.code == -9, killed

    rerun = run_cli_process([*tune_argv(storage, "changed", "result", 3), "--skip-if-exists"], cwd=workdir, env=probe)

    assert rerun.code == 0, rerun
    assert epochs_by_run(workdir) == {"result/trial_0": [0, 1], "result/trial_1": [0, 1, 2]}
    assert (f"Not resuming from {workdir / 'result' / 'trial_0'}: its training config differs from this retry's; "
            "training from scratch.") in rerun.err


@pytest.mark.parametrize("cut", ["model state cut short", "training state not written"])
def test_a_checkpoint_the_kill_cut_short_is_left_out_and_the_retry_resumes_from_the_one_before(
    workdir: Path, storage: str, probe: Dict[str, str], cut: str
) -> None:
    values = write_json(workdir / "values.json", VALUES)
    argv = tune_argv(storage, "cut", "result", 4, "--enqueue-trial", str(values))
    killed = run_cli_process(argv, cwd=workdir, env={**probe, KILL_ENV: "3"})
    assert killed.code == -9, killed
    killed_dir = workdir / "result" / "trial_0"
    assert {p.name for p in killed_dir.glob("*_state_e*")} == {
        "model_state_e2_b0.th", "training_state_e2_b0.th", "model_state_e3_b0.th", "training_state_e3_b0.th"}
    # What a kill while AllenNLP saves the checkpoint after epoch 2 leaves behind.
    if cut == "model state cut short":
        model_state = killed_dir / "model_state_e3_b0.th"
        model_state.write_bytes(model_state.read_bytes()[: model_state.stat().st_size // 2])
    else:
        (killed_dir / "training_state_e3_b0.th").unlink()

    resumed = run_cli_process([*argv, "--skip-if-exists"], cwd=workdir, env=probe)

    assert resumed.code == 0, resumed
    retry_dir = workdir / "result" / "trial_1"
    assert (f"Not resuming from the checkpoint after epoch 2 of {killed_dir}: its worker died while writing it; "
            "using the one before, if any.") in resumed.err
    assert f"Resuming the training of {killed_dir} in {retry_dir} after its epoch 1." in resumed.err
    assert "Traceback" not in resumed.err
    assert epochs_by_run(workdir) == {"result/trial_0": [0, 1, 2], "result/trial_1": [2, 3]}
    killed_trial, retry = optuna.load_study(study_name="cut", storage=storage).trials
    assert (killed_trial.state, retry.state) == (TrialState.FAIL, TrialState.COMPLETE)
    assert retry.value == read_json(retry_dir / "metrics.json")["best_validation_accuracy"]


def test_incomplete_checkpoints_are_those_with_a_state_missing_or_cut_short(tmp_path: Path) -> None:
    for name in ("model_state_e1_b0.th", "training_state_e1_b0.th", "model_state_e2_b0.th",
                 "training_state_e2_b0.th", "model_state_e3_b0.th"):
        torch.save({"weights": torch.ones(64)}, tmp_path / name)
    cut = tmp_path / "training_state_e2_b0.th"
    cut.write_bytes(cut.read_bytes()[:-30])
    (tmp_path / "best.th").write_bytes(b"")

    broken = incomplete_checkpoints(str(tmp_path))

    assert broken == {"model_state_e2_b0.th", "training_state_e2_b0.th", "model_state_e3_b0.th"}
    assert completed_epochs(str(tmp_path)) == 2 and completed_epochs(str(tmp_path), leaving_out=broken) == 1


def test_a_run_the_killed_trial_never_started_is_trained_fresh(tmp_path: Path) -> None:
    # --seeds 2 killed in seed_0: the retry's seed_1 has no killed run to continue.
    state = adopt_run(str(tmp_path / "trial_0" / "seed_1"), str(tmp_path / "trial_1" / "seed_1"), Params({}))

    assert state is RunState.FRESH and not (tmp_path / "trial_1").exists()


def test_a_run_is_finished_once_its_metrics_json_is_written_whole(tmp_path: Path) -> None:
    assert not finished_run(str(tmp_path))
    (tmp_path / "metrics.json").write_text("")  # killed between AllenNLP's open() and write()
    assert not finished_run(str(tmp_path))
    write_json(tmp_path / "metrics.json", {"best_validation_accuracy": 0.5})
    assert finished_run(str(tmp_path))


def test_a_killed_worker_is_replaced_and_the_retry_resumes_in_the_same_run(
    workdir: Path, postgres: str, probe: Dict[str, str]
) -> None:
    values = write_json(workdir / "values.json", VALUES)
    name = unique_name()
    argv = tune_argv(postgres, name, "result", 4, "--enqueue-trial", str(values), "--n-workers", "2")
    argv[argv.index("--max-trials") + 1] = "2"

    # The probe kills the worker training the enqueued trial 0 (both workers start a trial at once: not whichever
    # reaches epoch 2 first).
    result = run_cli_process(argv, cwd=workdir, env={**probe, KILL_ENV: "2:trial_0"})

    assert result.code == 0, result
    states = by_state(optuna.load_study(study_name=name, storage=postgres))
    [killed] = states["FAIL"]
    [retry] = [t for t in states["COMPLETE"] if retried_trial_number(t) == killed.number]
    assert retry.params == VALUES and retry.user_attrs["resumed_from"] == killed.user_attrs["serialization_dir"]
    # The worker processes import --include-package too: the probe ran in them.
    assert epochs_by_run(workdir)[f"result/trial_{killed.number}"] == [0, 1]
    assert epochs_by_run(workdir)[f"result/trial_{retry.number}"] == [2, 3]
