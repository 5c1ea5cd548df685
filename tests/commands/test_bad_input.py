"""Bad input to `allennlp tune`: one clear line, exit status 2, no traceback, nothing touched."""
import functools
from pathlib import Path
from typing import List

import optuna
import pytest

from tests.conftest import CONFIG, HPARAMS, METRIC_CHOICES, assert_command_refused, read_json, run_cli, write_json

LR = {"type": "float", "attributes": {"name": "lr", "low": 0.01, "high": 0.1}}


def good_entries() -> List[dict]:
    return read_json(HPARAMS)


def tune_argv(hparams: Path, *extra: str) -> List[str]:
    return ["tune", str(CONFIG), str(hparams), "-s", "result", "--storage", "sqlite:///study.db", *extra]


assert_refused = functools.partial(assert_command_refused, "tune")


SEARCH_SPACE_CASES = {
    "unknown type": (
        [{"type": "integer", "attributes": {"name": "lr", "low": 1, "high": 2}}],
        "{hp}: entry 0: unknown type 'integer'; use one of int, float, categorical, uniform, loguniform, "
        "discrete_uniform",
    ),
    "missing name": (
        [{"type": "float", "attributes": {"low": 0.1, "high": 0.2}}],
        "{hp}: entry 0: missing 'name' in attributes (the std.extVar the config reads)",
    ),
    "duplicate name": (
        [LR, LR],
        "{hp}: entry 1: duplicate name 'lr'; each hyperparameter may appear once",
    ),
    "low above high": (
        [{"type": "int", "attributes": {"name": "embedding_dim", "low": 16, "high": 4}}],
        "{hp}: entry 0 (embedding_dim): 'low' (16) must not exceed 'high' (4)",
    ),
    "log with a non-positive low": (
        [{"type": "float", "attributes": {"name": "lr", "low": 0.0, "high": 0.1, "log": True}}],
        "{hp}: entry 0 (lr): 'low' must be above 0 when sampling on a log scale, got 0",
    ),
    "unknown attribute": (
        [{"type": "float", "attributes": {"name": "lr", "lower": 0.01, "high": 0.1}}],
        "{hp}: entry 0 (lr): unknown attribute(s) ['lower'] for type 'float'; suggest_float takes name, low, "
        "high, step, log",
    ),
    "missing attribute": (
        [{"type": "categorical", "attributes": {"name": "optimizer"}}],
        "{hp}: entry 0 (optimizer): missing attribute(s) ['choices'] for type 'categorical'",
    ),
    "not a list": (
        {"lr": [0.01, 0.1]},
        '{hp}: expected a non-empty JSON list of {{"type": ..., "attributes": {{...}}}} entries, got dict '
        '{{"lr": [0.01, 0.1]}}',
    ),
}


@pytest.mark.parametrize("case", SEARCH_SPACE_CASES)
def test_a_bad_search_space_is_refused_before_training(
    case: str, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    entries, message = SEARCH_SPACE_CASES[case]
    hparams = write_json(workdir / "hparams.json", entries)

    result = run_cli(tune_argv(hparams), capsys)

    assert_refused(result, message.format(hp=hparams))
    assert not (workdir / "result").exists()
    assert not (workdir / "study.db").exists()


def test_an_unreadable_search_space_file_is_refused(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    result = run_cli(tune_argv(workdir / "missing.json"), capsys)

    assert_refused(result, f"search-space file {workdir / 'missing.json'} does not exist")


def test_an_ext_var_nobody_provides_is_named(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    entries = [e for e in good_entries() if e["attributes"]["name"] not in ("optimizer", "dropout")]
    hparams = write_json(workdir / "hparams.json", entries)

    result = run_cli(tune_argv(hparams), capsys)

    assert_refused(
        result,
        f"{CONFIG} reads std.extVar 'dropout', 'optimizer', which neither the search space nor the environment "
        "provides; add it to the search-space file or export it",
    )
    assert not (workdir / "result").exists()


def test_a_hyperparameter_the_config_never_reads_is_a_warning(
    workdir: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    entries = good_entries() + [{"type": "int", "attributes": {"name": "hidden_size", "low": 1, "high": 4}}]
    hparams = write_json(workdir / "hparams.json", entries)

    result = run_cli(tune_argv(hparams, "--n-trials", "1"), capsys)

    assert result.code == 0, result
    assert (
        f"Search-space hyperparameter 'hidden_size' is never read by {CONFIG} (no std.extVar('hidden_size')); "
        "sampling it has no effect on training." in caplog.messages
    )


def test_an_existing_study_is_not_touched_without_skip_if_exists(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    assert run_cli(tune_argv(HPARAMS, "--n-trials", "1"), capsys).code == 0
    metrics = (workdir / "result" / "trial_0" / "metrics.json").read_bytes()

    result = run_cli(tune_argv(HPARAMS, "--n-trials", "1"), capsys)

    assert_refused(
        result,
        "study 'classifier' already exists in sqlite:///study.db; pass --skip-if-exists to continue it, "
        "or choose another --study-name",
    )
    study = optuna.load_study(study_name="classifier", storage="sqlite:///study.db")
    assert len(study.trials) == 1
    assert sorted(p.name for p in (workdir / "result").iterdir()) == ["report.html", "trial_0", "trials.csv"]
    assert (workdir / "result" / "trial_0" / "metrics.json").read_bytes() == metrics


def test_trial_directories_of_another_study_are_never_overwritten(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    assert run_cli(tune_argv(HPARAMS, "--n-trials", "1", "--study-name", "first"), capsys).code == 0
    metrics = (workdir / "result" / "trial_0" / "metrics.json").read_bytes()

    result = run_cli(tune_argv(HPARAMS, "--n-trials", "1", "--study-name", "second"), capsys)

    assert_refused(result, "result already holds trial_0 that study 'second' did not write; choose a new --serialization-dir")
    assert (workdir / "result" / "trial_0" / "metrics.json").read_bytes() == metrics


def public_classes(module: object, suffix: str) -> str:
    """The classes the installed Optuna exports from ``module`` (the lists change between releases)."""
    names = [name for name in module.__all__ if name.endswith(suffix) and not name.startswith("Base")]  # type: ignore[attr-defined]
    return ", ".join(sorted(names))


OPTUNA_SETTINGS_CASES = {
    "unknown sampler": (
        {"sampler": {"type": "TPE", "attributes": {}}},
        "{path}: sampler: unknown sampler 'TPE'; use one of " + public_classes(optuna.samplers, "Sampler"),
    ),
    "bad sampler keyword": (
        {"sampler": {"type": "RandomSampler", "attributes": {"sead": 1}}},
        "{path}: sampler: RandomSampler has no argument(s) ['sead']; it takes seed",
    ),
    "unknown pruner": (
        {"pruner": {"type": "MedianPrunner", "attributes": {}}},
        "{path}: pruner: unknown pruner 'MedianPrunner'; use one of " + public_classes(optuna.pruners, "Pruner"),
    ),
    "pruner rejecting its values": (
        {"pruner": {"type": "ThresholdPruner", "attributes": {}}},
        "{path}: pruner: ThresholdPruner({{}}) failed: Either lower or upper must be specified.",
    ),
    "unknown key": (
        {"samplers": {"type": "RandomSampler"}},
        "{path}: unknown key(s) ['samplers']; expected 'sampler' and/or 'pruner'",
    ),
}


@pytest.mark.parametrize("case", OPTUNA_SETTINGS_CASES)
def test_bad_optuna_settings_are_refused(case: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    settings, message = OPTUNA_SETTINGS_CASES[case]
    path = write_json(workdir / "optuna.json", settings)

    result = run_cli(tune_argv(HPARAMS, "--optuna-param-path", str(path)), capsys)

    assert_refused(result, message.format(path=path))
    assert not (workdir / "study.db").exists()


@pytest.mark.parametrize("skip_exception", [False, True], ids=["", "--skip-exception"])
def test_a_metric_training_never_reports_stops_the_study_after_the_first_epoch(
    skip_exception: bool, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    extra = ["--skip-exception"] if skip_exception else []
    result = run_cli(tune_argv(HPARAMS, "--n-trials", "3", "--metrics", "best_validation_acc", *extra), capsys)

    assert_refused(
        result,
        f"metric 'best_validation_acc' is not among the metrics of {Path('result', 'trial_0')} after epoch 0; "
        f"choose --metrics from: {METRIC_CHOICES}",
    )
    study = optuna.load_study(study_name="classifier", storage="sqlite:///study.db")
    assert [t.state.name for t in study.trials] == ["FAIL"]
    assert "Traceback" in study.trials[0].user_attrs["fail_reason"]  # kept for whoever investigates
    trial_dir = workdir / "result" / "trial_0"
    assert (trial_dir / "metrics_epoch_0.json").is_file()
    assert not (trial_dir / "metrics_epoch_1.json").exists()  # 1 of the config's 3 epochs trained
    assert not (trial_dir / "metrics.json").exists()
    assert "optuna_metric_check" not in (trial_dir / "config.json").read_text()


def test_a_non_positive_trial_count_is_refused(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    result = run_cli(tune_argv(HPARAMS, "--n-trials", "0"), capsys)

    assert_refused(result, "--n-trials must be at least 1, got 0")


def test_joining_a_study_with_another_metric_is_refused(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_cli(tune_argv(HPARAMS, "--n-trials", "1"), capsys).code == 0

    result = run_cli(
        tune_argv(HPARAMS, "--n-trials", "1", "--skip-if-exists", "--metrics", "best_validation_accuracy",
                  "--direction", "minimize"),
        capsys,
    )

    assert_refused(
        result,
        "study 'classifier' optimizes best_validation_loss, not best_validation_accuracy; "
        "pass --metrics best_validation_loss or choose another --study-name",
    )
    assert len(optuna.load_study(study_name="classifier", storage="sqlite:///study.db").trials) == 1
