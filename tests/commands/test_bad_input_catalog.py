"""A catalog of bad input to all four commands: one `error:` line each, exit 2, nothing written or lost.

Each case runs one command line in a directory holding a finished study and user files, and
checks the exact message, that no traceback was printed, and that every file (the study's trial
directories, the user's files) and every trial of the study is as it was.
"""
import shutil
from pathlib import Path
from typing import List

import pytest

from tests.conftest import (
    CONFIG,
    HPARAMS,
    TunedStudy,
    assert_refused_leaving_all_as_it_was,
    storage_error,
    write_json,
)

STORE = "sqlite:///study.db"
PASSWORD = "s3cret-Pa55"


@pytest.fixture
def project(tuned_study: TunedStudy, workdir: Path) -> Path:
    """The working directory with a copy of the tuned study's database and user files.

    The copied study's trials own the tuned study's directories (``{tuned}`` in a case's arguments).
    """
    shutil.copy(tuned_study.root / "tuned.db", workdir / "study.db")
    (workdir / "notes dir ü").mkdir()
    (workdir / "notes dir ü" / "keep.txt").write_text("user file\n")
    write_json(workdir / "wrong_type.json", {"lr": "fast", "embedding_dim": 8})
    write_json(workdir / "unknown_param.json", {"learning_rate": 0.1})
    write_json(workdir / "empty_space.json", [])
    write_json(workdir / "space_object.json", {"lr": [0.01, 0.1]})
    (workdir / "broken.json").write_text("{oops")
    (workdir / "list.jsonnet").write_text("[1, 2]")
    (workdir / "number.jsonnet").write_text("42")
    (workdir / "a file").write_text("not a directory\n")
    return workdir


def tune(*extra: str, config: str = str(CONFIG), hparams: str = str(HPARAMS), out: str = "new result") -> List[str]:
    return ["tune", config, hparams, "-s", out, "--storage", STORE, "--study-name", "fresh", *extra]


def joined(*extra: str) -> List[str]:
    return ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--storage", STORE, "--study-name", "classifier",
            "--skip-if-exists", "--metrics", "best_validation_accuracy", *extra]


def best(*extra: str) -> List[str]:
    return ["best-params", "--storage", STORE, *extra]


def retrain(*extra: str, out: str = "retrained") -> List[str]:
    return ["retrain", str(CONFIG), "-s", out, "--storage", STORE, *extra]


def report(*extra: str) -> List[str]:
    return ["tune-report", "--storage", STORE, *extra]


NO_SERVER = "postgresql://tuner:" + PASSWORD + "@127.0.0.1:1/studies"
REFUSED = f"cannot open storage postgresql://tuner:***@127.0.0.1:1/studies: {storage_error(NO_SERVER)}"

# name: (command, argv, message); in the message "{cwd}" is the working directory and "{tuned}" the
# tuned study's serialization directory (also in argv), other braces are doubled.
CATALOG = {
    # tune: flags
    "tune: zero trials": ("tune", tune("--n-trials", "0"), "--n-trials must be at least 1, got 0"),
    "tune: negative timeout": ("tune", tune("--timeout", "-1"), "--timeout must be a positive number of seconds, got -1.0"),
    "tune: zero max trials": ("tune", tune("--max-trials", "0"), "--max-trials must be at least 1, got 0"),
    "tune: zero heartbeat": (
        "tune", tune("--heartbeat-interval", "0"), "--heartbeat-interval must be at least 1 second, got 0"
    ),
    "tune: zero workers": ("tune", tune("--n-workers", "0"), "--n-workers must be at least 1, got 0"),
    "tune: zero GPUs per trial": (
        "tune", tune("--devices-per-trial", "0"), "--devices-per-trial must be at least 1, got 0"
    ),
    "tune: a GPU the machine lacks": (
        "tune", tune("--devices", "0"),
        "--devices 0: this machine has no GPU visible to PyTorch; leave out --devices to train on CPU",
    ),
    "tune: a missing package": (
        "tune", tune("--include-package", "no_such_package_xyz"),
        "argument --include-package: cannot import 'no_such_package_xyz': No module named 'no_such_package_xyz'",
    ),
    "tune: a malformed constraint": (
        "tune", tune("--constraint", "peak_worker_0_memory_MB<2000"),
        "--constraint must look like KEY<=NUMBER or KEY>=NUMBER, got 'peak_worker_0_memory_MB<2000'",
    ),
    "tune: a constraint without a number": (
        "tune", tune("--constraint", "num_parameters>=lots"),
        "--constraint 'num_parameters>=lots': the bound must be a finite number, got 'lots'",
    ),
    # tune: files
    "tune: a missing config": ("tune", tune(config="missing.jsonnet"), "config file missing.jsonnet does not exist"),
    "tune: a config that is a list": (
        "tune", tune(config="list.jsonnet"),
        "list.jsonnet evaluates to a JSON list, not an object of settings (dataset_reader, model, trainer, ...)",
    ),
    "tune: a config that is a number": (
        "tune", tune(config="number.jsonnet"),
        "number.jsonnet evaluates to a JSON int, not an object of settings (dataset_reader, model, trainer, ...)",
    ),
    "tune: an empty search space": (
        "tune", tune(hparams="empty_space.json"),
        'empty_space.json: expected a non-empty JSON list of {{"type": ..., "attributes": {{...}}}} entries, got list []',
    ),
    "tune: a search space that is an object": (
        "tune", tune(hparams="space_object.json"),
        'space_object.json: expected a non-empty JSON list of {{"type": ..., "attributes": {{...}}}} entries, got dict '
        '{{"lr": [0.01, 0.1]}}',
    ),
    "tune: a malformed search space": (
        "tune", tune(hparams="broken.json"),
        "cannot read search-space file broken.json: STATIC ERROR: broken.json:1:6: expected token OPERATOR but got end "
        "of file",
    ),
    "tune: an enqueued value of the wrong type": (
        "tune", tune("--enqueue-trial", "wrong_type.json"),
        '--enqueue-trial file wrong_type.json: lr="fast" is outside the search space (FloatDistribution(high=0.3, '
        "log=True, low=0.005, step=None)); change the value or widen the range",
    ),
    "tune: an enqueued unknown hyperparameter": (
        "tune", tune("--enqueue-trial", "unknown_param.json"),
        "--enqueue-trial file unknown_param.json: unknown hyperparameter(s) ['learning_rate']; the search space has "
        "embedding_dim, max_filter_size, num_filters, dropout, lr, optimizer",
    ),
    "tune: a malformed enqueue file": (
        "tune", tune("--enqueue-trial", "broken.json"),
        "--enqueue-trial file broken.json is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
    ),
    "tune: a missing optuna settings file": (
        "tune", tune("--optuna-param-path", "missing.json"),
        "cannot read Optuna settings file missing.json: No such file or directory",
    ),
    "tune: malformed overrides": (
        "tune", tune("-o", '{"trainer": '),
        "-o/--overrides is not valid JSON: STATIC ERROR: overrides:1:13: unexpected end of file.",
    ),
    "tune: overrides that are a list": ("tune", tune("-o", "[1]"), "-o/--overrides must be a JSON object, got list [1]"),
    "tune: a serialization dir inside a file": (
        "tune", tune(out="a file/result"), "cannot create --serialization-dir a file/result: {cwd}/a file is not a directory"
    ),
    "tune: a serialization dir that is a file": (
        "tune", tune(out="a file"), "--serialization-dir a file is a file, not a directory"
    ),
    "tune: a serialization dir that cannot be created": (
        "tune", tune(out="/proc/no such dir/r"),
        "cannot create --serialization-dir /proc/no such dir/r: No such file or directory (/proc)",
    ),
    # tune: storage and studies
    "tune: a storage server that refuses": ("tune", tune(*["--storage", NO_SERVER]), REFUSED),
    "tune: a storage in a missing directory": (
        "tune", tune("--storage", "sqlite:///no dir/x.db"),
        "cannot open storage sqlite:///no dir/x.db: (sqlite3.OperationalError) unable to open database file",
    ),
    "tune: an existing study without --skip-if-exists": (
        "tune", tune("--study-name", "classifier"),
        "study 'classifier' already exists in sqlite:///study.db; pass --skip-if-exists to continue it, "
        "or choose another --study-name",
    ),
    "tune: joining with the other direction": (
        "tune", joined("--direction", "minimize"),
        "study 'classifier' was created to maximize, but --direction minimize was asked for",
    ),
    "tune: joining with another metric": (
        "tune", joined("--metrics", "best_validation_loss", "--direction", "maximize"),
        "study 'classifier' optimizes best_validation_accuracy, not best_validation_loss; "
        "pass --metrics best_validation_accuracy or choose another --study-name",
    ),
    "tune: joining with a constraint the study's trials lacked": (
        "tune", joined("--constraint", "num_parameters<=5000"),
        "study 'classifier' holds its trials to no --constraint, not --constraint num_parameters<=5000; "
        "pass the same --constraint flags or choose another --study-name",
    ),
    # best-params
    "best-params: a missing sqlite file": (
        "best-params", ["best-params", "--storage", "sqlite:///nope.db"],
        "storage sqlite:///nope.db does not exist: no file {cwd}/nope.db; pass the --storage that allennlp tune used",
    ),
    "best-params: an unknown study": (
        "best-params", best("--study-name", "other"), "no study 'other' in sqlite:///study.db; studies there: classifier"
    ),
    "best-params: a storage that is no URL": (
        "best-params", ["best-params", "--storage", "not a url"],
        f"cannot open storage not a url: {storage_error('not a url')}",
    ),
    "best-params: a storage server that refuses": ("best-params", ["best-params", "--storage", NO_SERVER], REFUSED),
    "best-params: a missing config": (
        "best-params", best("missing.jsonnet"), "config file missing.jsonnet does not exist"
    ),
    "best-params: a config that is a list": (
        "best-params", best("list.jsonnet"),
        "list.jsonnet evaluates to a JSON list, not an object of settings (dataset_reader, model, trainer, ...)",
    ),
    "best-params: malformed overrides": (
        "best-params", best(str(CONFIG), "-o", "{bad"),
        "-o/--overrides is not valid JSON: STATIC ERROR: overrides:1:5: expected token OPERATOR but got end of file",
    ),
    "best-params: an output file in a missing directory": (
        "best-params", best(str(CONFIG), "--output-file", "no dir/best.json"),
        "cannot write --output-file no dir/best.json: no directory {cwd}/no dir",
    ),
    "best-params: an output file that is a directory": (
        "best-params", best(str(CONFIG), "--output-file", "notes dir ü"),
        "--output-file notes dir ü is a directory; name a file",
    ),
    "best-params: a missing package": (
        "best-params", best("--include-package", "no_such_package_xyz"),
        "argument --include-package: cannot import 'no_such_package_xyz': No module named 'no_such_package_xyz'",
    ),
    # retrain
    "retrain: into the study's own directory": (
        "retrain", retrain(out="{tuned}"),
        "{tuned} holds trial 0's directory {tuned}/trial_0; retrain into a new --serialization-dir",
    ),
    "retrain: an unknown trial": (
        "retrain", retrain("--trial", "99"), "study 'classifier' has no trial 99; its trials are numbered 0 to 2"
    ),
    "retrain: a serialization dir inside a file": (
        "retrain", retrain(out="a file/x"), "cannot create --serialization-dir a file/x: {cwd}/a file is not a directory"
    ),
    "retrain: overrides that are a list": (
        "retrain", retrain("-o", "[1]"), "-o/--overrides must be a JSON object, got list [1]"
    ),
    "retrain: a missing config": (
        "retrain", ["retrain", "missing.jsonnet", "-s", "retrained", "--storage", STORE],
        "config file missing.jsonnet does not exist",
    ),
    "retrain: force and recover": (
        "retrain", retrain("-f", "-r"), "-f/--force and -r/--recover exclude each other; pass one"
    ),
    "retrain: a storage server that refuses": ("retrain", retrain("--storage", NO_SERVER), REFUSED),
    "retrain: a missing package": (
        "retrain", retrain("--include-package", "no_such_package_xyz"),
        "argument --include-package: cannot import 'no_such_package_xyz': No module named 'no_such_package_xyz'",
    ),
    # tune-report
    "tune-report: a page in a missing directory": (
        "tune-report", report("-o", "no dir/r.html"), "cannot write -o/--output no dir/r.html: no directory {cwd}/no dir"
    ),
    "tune-report: a page that is a directory": (
        "tune-report", report("-o", "notes dir ü"), "-o/--output notes dir ü is a directory; name a file"
    ),
    "tune-report: a CSV in a missing directory (and no page written)": (
        "tune-report", report("-o", "page.html", "--csv", "no dir/t.csv"),
        "cannot write --csv no dir/t.csv: no directory {cwd}/no dir",
    ),
    "tune-report: a missing sqlite file": (
        "tune-report", ["tune-report", "--storage", "sqlite:///nope.db"],
        "storage sqlite:///nope.db does not exist: no file {cwd}/nope.db; pass the --storage that allennlp tune used",
    ),
    "tune-report: a storage server that refuses": ("tune-report", ["tune-report", "--storage", NO_SERVER], REFUSED),
    "tune-report: a missing package": (
        "tune-report", report("--include-package", "no_such_package_xyz"),
        "argument --include-package: cannot import 'no_such_package_xyz': No module named 'no_such_package_xyz'",
    ),
}


@pytest.mark.parametrize("case", CATALOG)
def test_bad_input_is_one_line_and_touches_nothing(
    case: str, project: Path, tuned_study: TunedStudy, capsys: pytest.CaptureFixture
) -> None:
    command, argv, message = CATALOG[case]

    result = assert_refused_leaving_all_as_it_was(
        command, [arg.replace("{tuned}", str(tuned_study.result)) for arg in argv],
        message.format(cwd=project, tuned=tuned_study.result), capsys, roots=(project, tuned_study.result),
        storage=STORE,
    )

    assert PASSWORD not in result.out + result.err


def test_the_catalog_covers_every_command_with_forty_cases() -> None:
    commands = [command for command, _, _ in CATALOG.values()]
    assert len(CATALOG) >= 40
    assert {c: commands.count(c) >= 6 for c in ("tune", "best-params", "retrain", "tune-report")} == {
        "tune": True, "best-params": True, "retrain": True, "tune-report": True
    }
