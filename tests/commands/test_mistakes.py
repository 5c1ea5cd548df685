"""A new user's mistakes with the newer features (issue 22): one clear line, nothing left behind, and the same
command with the mistake fixed just works.

Each kind of mistake has its catalog: an option without effect is refused instead of succeeding silently;
what used to end in a traceback (a sampler's grid, an in-memory storage, an empty path, missing data) is one
line; data is checked for every ``--repeat`` value; a refused run leaves no study, database or directory
behind; an unknown option gets the closest ones and the command's usage. A refused command leaves every
file and every study of the storage as it was. A study whose trials all failed on a mistake is continued by
the same command once the mistake is fixed.
"""
import logging
import shutil
from pathlib import Path
from typing import List, Tuple

import optuna
import pytest

from allennlp_optuna.parallel.plan import plan_workers
from allennlp_optuna.study.record import failure_line
from allennlp_optuna.study.settings import TuneSettings
from tests.conftest import (
    CONFIG,
    FIXTURES,
    HPARAMS,
    METRIC_CHOICES,
    TunedStudy,
    assert_command_refused,
    assert_refused_leaving_all_as_it_was,
    read_json,
    run_cli,
    snapshot,
    write_json,
)

STORE = "sqlite:///study.db"
GRID = {"embedding_dim": [4], "max_filter_size": [2], "num_filters": [2], "dropout": [0.1], "lr": [0.01],
        "optimizer": ["adam"]}


def grid_sampler(**changes: object) -> dict:
    grid = {name: values for name, values in {**GRID, **changes}.items() if values is not None}
    return {"sampler": {"type": "GridSampler", "attributes": {"search_space": grid}}}


@pytest.fixture
def project(tuned_study: TunedStudy, workdir: Path) -> Path:
    """The working directory: a copy of the tuned study, sampler files, fold 0's validation data (fold 1's is
    missing), and a directory holding a ``trial_0`` that no study wrote."""
    shutil.copy(tuned_study.root / "tuned.db", workdir / "study.db")
    write_json(workdir / "grid_partial.json", grid_sampler(embedding_dim=None, num_filters=None))
    write_json(workdir / "grid_extra.json", grid_sampler(hidden_size=[32, 64]))
    write_json(workdir / "grid_outside.json", grid_sampler(lr=[0.01, 5.0]))
    write_json(workdir / "brute_force.json", {"sampler": {"type": "BruteForceSampler", "attributes": {}}})
    write_json(workdir / "adam_only.json", [
        {**entry, "attributes": {**entry["attributes"], "choices": ["adam"]}} if entry["type"] == "categorical"
        else entry
        for entry in read_json(HPARAMS)
    ])
    shutil.copy(FIXTURES / "data" / "dev.jsonl", workdir / "dev_0.jsonl")
    folds = CONFIG.read_text().replace("here + '/../data/'", repr(f"{FIXTURES}/data/"))
    folds = folds.replace("data + 'dev.jsonl'", "'dev_' + std.extVar('fold') + '.jsonl'")
    (workdir / "folds.jsonnet").write_text(folds)
    (workdir / "copied" / "trial_0").mkdir(parents=True)
    (workdir / "copied" / "trial_0" / "notes.txt").write_text("someone else's trial\n")
    return workdir


def tune(*extra: str, out: str = "new result", storage: str = STORE, config: str = str(CONFIG)) -> List[str]:
    return ["tune", config, str(HPARAMS), "-s", out, "--storage", storage, "--study-name", "fresh", *extra]


def retrain(*extra: str, out: str = "retrained") -> List[str]:
    return ["retrain", str(CONFIG), "-s", out, "--storage", STORE, *extra]


IN_MEMORY = (
    "--storage {url} keeps the study in memory, where no other connection or process can open it (the console, "
    "workers, best-params, retrain, tune-report); use a file, e.g. --storage sqlite:///study.db, or PostgreSQL or "
    "MySQL to share it between machines"
)


def sampler_case(name: str, message: str) -> Tuple[str, List[str], str]:
    """``tune --optuna-param-path NAME.json`` (a file of the project), refused with ``NAME.json: sampler: MESSAGE``."""
    return "tune", tune("--optuna-param-path", f"{{cwd}}/{name}.json"), f"{{cwd}}/{name}.json: sampler: {message}"


# kind: {name: (command, argv, message)}; in argv and the message "{cwd}" is the working directory.
CATALOG = {
    "an option without effect": {
        "tune: --repeat over a variable the config never reads": (
            "tune", tune("--repeat", "fold=0,1"),
            f"--repeat fold=0,1: {CONFIG} never reads std.extVar('fold'), so the 2 runs of a trial would train the "
            "same; read it in the config (a data path per fold, say), or use --seeds 2 for runs that differ by seed",
        ),
        "tune: --devices-per-trial without --devices": (
            "tune", tune("--devices-per-trial", "2"),
            "--devices-per-trial 2 takes effect only with --devices; list the GPUs to split between the workers, "
            "e.g. --devices 0,1",
        ),
    },
    "a traceback before": {
        "tune: a grid that misses hyperparameters": sampler_case(
            "grid_partial", "GridSampler's search_space has no values for embedding_dim, num_filters; list every "
            "hyperparameter of the search space with its values",
        ),
        "tune: a grid with a parameter the search space lacks": sampler_case(
            "grid_extra", "GridSampler's search_space lists hidden_size, which the search space does not sample (its "
            "grid points would train the same config); remove it",
        ),
        "tune: a grid value outside the search space": sampler_case(
            "grid_outside", "GridSampler's value lr=5.0 is outside the search space (FloatDistribution(high=0.3, "
            "log=True, low=0.005, step=None)); change the value or widen the range",
        ),
        "tune: a brute-force sampler over a float without a step": sampler_case(
            "brute_force", "BruteForceSampler tries every value, but lr is a float without a step "
            "(FloatDistribution(high=0.3, log=True, low=0.005, step=None)); give it a step or choose another sampler",
        ),
        "tune: joining a study with a categorical's choices changed": (
            "tune", ["tune", str(CONFIG), "adam_only.json", "-s", "joined", "--storage", STORE, "--study-name",
                     "classifier", "--skip-if-exists", "--metrics", "best_validation_accuracy"],
            "study 'classifier' samples optimizer from CategoricalDistribution(choices=('adam', 'sgd')), which a study "
            "cannot change to CategoricalDistribution(choices=('adam',)); pass the search space it was tuned with or "
            "choose another --study-name",
        ),
        "tune: an in-memory SQLite storage": (
            "tune", tune(storage="sqlite:///:memory:"), IN_MEMORY.format(url="sqlite:///:memory:"),
        ),
        "tune: an in-memory SQLite storage shared by workers": (
            "tune", tune("--n-workers", "2", storage="sqlite://"), IN_MEMORY.format(url="sqlite://"),
        ),
        **{
            f"{command}: an empty serialization dir": (
                command, argv(out=""), "--serialization-dir is empty; name a directory, e.g. -s result"
            )
            for command, argv in (("tune", tune), ("retrain", retrain))
        },
        **{
            f"{command}: training data that does not exist": (
                command, argv("-o", '{"train_data_path": "data/train.jsonl"}'),
                "train_data_path data/train.jsonl does not exist",
            )
            for command, argv in (("tune", tune), ("retrain", retrain))
        },
        "tune: test data that does not exist": (
            "tune", tune("-o", '{"test_data_path": "test.jsonl"}'), "test_data_path test.jsonl does not exist",
        ),
        "best-params: an empty output file": (
            "best-params", ["best-params", str(CONFIG), "--storage", STORE, "--output-file", ""],
            "--output-file is empty; name a file, e.g. --output-file best_config.json",
        ),
        "tune-report: an empty page": (
            "tune-report", ["tune-report", "--storage", STORE, "-o", ""],
            "-o/--output is empty; name a file, e.g. --output report.html",
        ),
        "tune-report: an empty CSV": (
            "tune-report", ["tune-report", "--storage", STORE, "--csv", ""],
            "--csv is empty; name a file, e.g. --csv trials.csv",
        ),
    },
    "data checked for one case only": {
        "tune: validation data of a later --repeat value that does not exist": (
            "tune", tune("--repeat", "fold=0,1", config="folds.jsonnet"),
            "validation_data_path dev_1.jsonl does not exist (for fold=1)",
        ),
        "tune: with --seeds too": (
            "tune", tune("--repeat", "fold=1,0", "--seeds", "2", config="folds.jsonnet"),
            "validation_data_path dev_1.jsonl does not exist (for fold=1)",
        ),
    },
    "left behind": {
        "tune: a new study into another study's trial directories, in a new database": (
            "tune", tune(out="copied", storage="sqlite:///new.db"),
            "copied already holds trial_0 that study 'fresh' did not write; choose a new --serialization-dir",
        ),
        "tune: a new study into another study's trial directories": (
            "tune", tune(out="copied"),
            "copied already holds trial_0 that study 'fresh' did not write; choose a new --serialization-dir",
        ),
    },
    "an unknown option": {
        "tune: --n-trails": (
            "tune", tune("--n-trails", "8"), "unrecognized arguments: --n-trails 8; did you mean --n-trials?"
        ),
        "tune: --sampler": (
            "tune", tune("--sampler", "tpe"), "unrecognized arguments: --sampler tpe; did you mean --optuna-param-path?"
        ),
        "tune: two slips": (
            "tune", tune("--n-trails", "8", "--skip-exceptions"),
            "unrecognized arguments: --n-trails 8 --skip-exceptions; did you mean --n-trials (for --n-trails), "
            "--skip-exception (for --skip-exceptions)?",
        ),
        "tune: no close option": (
            "tune", tune("--epochs", "3"), "unrecognized arguments: --epochs 3; allennlp tune --help lists its options"
        ),
        "best-params: --fromat": (
            "best-params", ["best-params", "--storage", STORE, "--fromat=json"],
            "unrecognized arguments: --fromat=json; did you mean --format?",
        ),
        "retrain: --trail": (
            "retrain", retrain("--trail", "1"), "unrecognized arguments: --trail 1; did you mean --trial?"
        ),
        "tune-report: --ouput": (
            "tune-report", ["tune-report", "--storage", STORE, "--ouput", "page.html"],
            "unrecognized arguments: --ouput page.html; did you mean --output?",
        ),
    },
    "an in-memory storage to read": {
        "best-params: an in-memory storage": (
            "best-params", ["best-params", "--storage", "sqlite:///:memory:"],
            "--storage sqlite:///:memory: is an in-memory database, empty in every new process; pass the --storage "
            "that allennlp tune used",
        ),
    },
}
CASES = {name: case for cases in CATALOG.values() for name, case in cases.items()}


@pytest.mark.parametrize("case", CASES)
def test_a_mistake_is_one_line_and_leaves_everything_as_it_was(
    case: str, project: Path, tuned_study: TunedStudy, capsys: pytest.CaptureFixture
) -> None:
    command, argv, message = CASES[case]
    argv = [arg.format(cwd=project) if "{cwd}" in arg else arg for arg in argv]

    assert_refused_leaving_all_as_it_was(
        command, argv, message.format(cwd=project), capsys, roots=(project, tuned_study.result), storage=STORE
    )
    assert not (project / "new result").exists() and not (project / "retrained").exists()


@pytest.mark.parametrize("case", ["tune: --n-trails", "best-params: --fromat", "retrain: --trail",
                                  "tune-report: --ouput"])
def test_an_unknown_option_shows_the_commands_own_usage(
    case: str, project: Path, capsys: pytest.CaptureFixture
) -> None:
    command, argv, _ = CASES[case]

    result = run_cli(argv, capsys)

    assert result.err.strip().splitlines()[0].startswith(f"usage: allennlp {command} ")


def test_every_kind_of_mistake_has_cases_for_the_newer_features() -> None:
    assert {kind: len(cases) >= 1 for kind, cases in CATALOG.items()} == dict.fromkeys(CATALOG, True)
    assert len(CASES) >= 25
    assert {command for command, _, _ in CASES.values()} == {"tune", "best-params", "retrain", "tune-report"}


# Fix and rerun: the same command, with the mistake fixed, continues the study its mistake stopped.


def tune_fresh(*extra: str) -> List[str]:
    return ["tune", str(CONFIG), *extra, "-s", "result", "--storage", STORE, "--n-trials", "1"]


def trial_states(storage: str = STORE, name: str = "classifier") -> List[str]:
    return [t.state.name for t in optuna.load_study(study_name=name, storage=storage).trials]


@pytest.mark.parametrize("typo, fixed, direction, join", [
    ("best_validation_acc", "best_validation_accuracy", "MAXIMIZE", ()),
    ("validation_los", "validation_loss", "MINIMIZE", ()),  # the fix infers the other direction: the study is remade
    ("best_validation_acc", "best_validation_accuracy", "MAXIMIZE", ("--skip-if-exists",)),
], ids=["same direction", "other direction", "--skip-if-exists"])
def test_a_wrong_metric_key_then_the_same_command_with_the_key_fixed_continues_the_study(
    typo: str, fixed: str, direction: str, join: Tuple[str, ...], workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    wrong = run_cli(tune_fresh(str(HPARAMS), "--metrics", typo, *join), capsys)
    assert_command_refused(
        "tune", wrong, f"metric {typo!r} is not among the metrics of result/trial_0 after epoch 0; "
        f"choose --metrics from: {METRIC_CHOICES}",
    )
    failed_trial = (workdir / "result" / "trial_0" / "metrics_epoch_0.json").read_bytes()

    fixed_run = run_cli(tune_fresh(str(HPARAMS), "--metrics", fixed, *join), capsys)

    assert fixed_run.code == 0, fixed_run
    study = optuna.load_study(study_name="classifier", storage=STORE)
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    assert [d.name for d in study.directions] == [direction]
    assert study.user_attrs["metrics"] == fixed and study.trials[1].value is not None
    assert (workdir / "result" / "trial_0" / "metrics_epoch_0.json").read_bytes() == failed_trial  # kept
    assert f"Best trial: 1, {fixed} = " in fixed_run.out


def test_skip_exception_with_every_trial_failing_exits_with_one_line_and_the_fixed_command_continues(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    entries = read_json(HPARAMS)
    for entry in entries:
        if entry["attributes"]["name"] == "optimizer":
            entry["attributes"]["choices"] = ["no_such_optimizer"]
    write_json(workdir / "hparams.json", entries)
    argv = tune_fresh("hparams.json", "--skip-exception")
    argv[argv.index("--n-trials") + 1] = "2"

    failing = run_cli(argv, capsys)

    last = optuna.load_study(study_name="classifier", storage=STORE).trials[-1]
    assert "no_such_optimizer" in failure_line(last)
    assert_command_refused(
        "tune", failing, f"no trial finished: all 2 trial(s) of this run failed (trial 1: {failure_line(last)}); "
        "fix that and run the same command again to continue the study",
    )
    write_json(workdir / "hparams.json", read_json(HPARAMS))

    fixed = run_cli(argv, capsys)

    assert fixed.code == 0, fixed
    assert trial_states() == ["FAIL", "FAIL", "COMPLETE", "COMPLETE"]


def test_a_study_with_a_finished_trial_is_still_joined_only_with_skip_if_exists(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    assert run_cli(tune_fresh(str(HPARAMS)), capsys).code == 0
    before = snapshot(workdir, storage=STORE)

    again = run_cli(tune_fresh(str(HPARAMS), "--metrics", "best_validation_accuracy"), capsys)

    assert_command_refused(
        "tune", again, "study 'classifier' already exists in sqlite:///study.db; pass --skip-if-exists to continue "
        "it, or choose another --study-name",
    )
    assert snapshot(workdir, storage=STORE) == before
    assert trial_states() == ["COMPLETE"]


# Where a user could mean it: one warning line.


def test_a_direction_against_the_keys_name_is_one_warning_line(caplog: pytest.LogCaptureFixture) -> None:
    TuneSettings.parse("config.jsonnet", "hparams.json", "result", metrics="best_validation_accuracy,num_parameters",
                       direction="minimize,maximize")

    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "--direction minimize for best_validation_accuracy, whose name says higher is better: the study will look "
        "for its worst values.",
        "--direction maximize for num_parameters, whose name says lower is better: the study will look for its "
        "worst values.",
    ]


def test_gpus_no_worker_trains_on_are_one_warning_line(caplog: pytest.LogCaptureFixture) -> None:
    plans = plan_workers(1, [0, 1, 2])

    assert [plan.devices for plan in plans] == [[0]]
    assert caplog.messages == ["--devices 0,1,2: the workers train on GPU(s) 0; GPU(s) 1,2 stay idle."]
