"""What a study costs beyond its training (issue: "a study costs no more than its training").

Runs the same trials (same sampler seed, same values) three ways, side by side:
`allennlp tune` (with and without data reuse), each trial as its own `allennlp train` process,
and the floor: the sum of the trials' `training_duration`. Prints the ratios. Then a memory
run: resident memory after trial 1 and after trial 30 of one in-process study. Run from the
repository root:

    python -m benchmarks.overhead                    # both scenarios + memory (about 15 min on 2 cores)
    python -m benchmarks.overhead --only reading --skip-memory
    python -m benchmarks.overhead --data-fraction 0.02 --n-trials 2 --memory-trials 2   # quick check
    python -m benchmarks.overhead --old-plugin-venv /tmp/oldplugin-venv   # and the old plugin

With ``--old-plugin-venv DIR`` each scenario also runs the old plugin (PyPI allennlp-optuna 0.1.7,
Optuna 2) from the venv at DIR, which :mod:`benchmarks.old_plugin` creates there if it is missing,
and prints its tune/floor next to ours. The old plugin ignores sampler settings, so it trains the
same values as our `allennlp tune` through trials enqueued with our trials' parameters; only its
`allennlp tune` is timed, and a warning is printed if its values differ from ours.

Scenarios:
- training: all 8,530 Rotten Tomatoes sentences, 4 trials x 3 epochs of the guide's config and
  search space (training dominates);
- reading: 5,000 full-length IMDB reviews, a tiny CNN, 6 trials x 2 epochs (reading dominates,
  as it does on a GPU).
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import psutil

from benchmarks.old_plugin import OLD_PLUGIN_VERSION, make_venv, run_old_plugin
from benchmarks.scenario import (
    ALLENNLP, GUIDE_CONFIG, GUIDE_SEARCH_SPACE, Scenario, make_scenario, output_to, run_tune, timed, training_seconds,
)

TINY_CNN = [
    {"type": "int", "attributes": {"name": "embedding_dim", "low": 4, "high": 8}},
    {"type": "int", "attributes": {"name": "max_filter_size", "low": 2, "high": 3}},
    {"type": "int", "attributes": {"name": "num_filters", "low": 4, "high": 8}},
    {"type": "int", "attributes": {"name": "output_dim", "low": 4, "high": 8}},
    {"type": "float", "attributes": {"name": "dropout", "low": 0.0, "high": 0.5}},
    {"type": "float", "attributes": {"name": "lr", "low": 1e-3, "high": 1e-2, "log": True}},
]


def scenarios(root: Path, data_fraction: float = 1.0, n_trials: Optional[int] = None) -> Dict[str, Scenario]:
    """The two scenarios; ``data_fraction`` and ``n_trials`` shrink them for a quick check."""

    def size(n: int) -> int:
        return max(2, round(n * data_fraction))

    return {
        "training": make_scenario(
            root / "training", source="rotten_tomatoes", n_train=size(6530), n_dev=size(2000), max_tokens=None,
            num_epochs=3, n_trials=n_trials or 4, config=GUIDE_CONFIG, hparams=GUIDE_SEARCH_SPACE,
        ),
        "reading": make_scenario(
            root / "reading", source="imdb", n_train=size(5000), n_dev=size(1000), max_tokens=None,
            num_epochs=2, n_trials=n_trials or 6, hparams=TINY_CNN,
        ),
    }


def separate_processes(scenario: Scenario, study_name: str) -> float:
    """Each trial of ``study_name`` again as its own `allennlp train`, with the same values."""
    from allennlp_optuna.study.config import ext_vars_for

    total = 0.0
    for trial in scenario.study(study_name).trials:
        total += timed(
            [*ALLENNLP, "train", "config.jsonnet", "-s", f"separate/trial_{trial.number}", "--file-friendly-logging"],
            scenario.directory,
            env=ext_vars_for(trial.params),
        )
    return total


def import_seconds(directory: Path) -> float:
    """What one `allennlp` command pays before it can work: Python's start and AllenNLP's imports."""
    probe = "import time; t = time.perf_counter(); import allennlp.commands; print(time.perf_counter() - t)"
    start = time.perf_counter()
    output = subprocess.run([sys.executable, "-c", probe], cwd=directory, capture_output=True, text=True, check=True)
    in_process = float(output.stdout.strip())
    return in_process + min(0.2, time.perf_counter() - start - in_process)  # + the interpreter's start


def read_seconds(scenario: Scenario, study_name: str) -> float:
    """One read as a trial's training does it: the train and validation data, then the vocabulary."""
    from allennlp.data import Vocabulary
    from allennlp.training.util import data_loaders_from_params

    from allennlp_optuna.study.config import load_params

    params = load_params(str(scenario.directory / "config.jsonnet"), scenario.study(study_name).trials[0].params)
    with output_to(scenario.directory / "bench.log"):
        start = time.perf_counter()
        loaders = data_loaders_from_params(params)
        Vocabulary.from_instances(loaders["train"].iter_instances())
        return time.perf_counter() - start


def measure(name: str, scenario: Scenario, old_python: Optional[Path] = None) -> None:
    """Time the scenario's study three ways (and with the old plugin at ``old_python``, if given); print.

    Imports are timed first, twice: the first run reads the libraries into the page cache, so
    that every way is timed with warm files (the kernel evicts them between runs otherwise).
    """
    import_seconds(scenario.directory)
    imports = import_seconds(scenario.directory)
    reuse_wall = run_tune(scenario, "reuse")
    no_reuse_wall = run_tune(scenario, "no_reuse", ["--no-data-reuse"])
    separate_wall = separate_processes(scenario, "reuse")
    floor = training_seconds(scenario.study("reuse"))
    n = scenario.n_trials
    reuse_values = [t.value for t in scenario.study("reuse").trials]
    assert reuse_values == [t.value for t in scenario.study("no_reuse").trials], "reuse changed results"
    read_and_vocab = (no_reuse_wall - reuse_wall) / (n - 1)
    print(f"\n== {name}: {n} trials")
    print(f"sum of training_duration (floor)    {floor:8.1f} s")
    print(f"allennlp tune                       {reuse_wall:8.1f} s   tune/floor {reuse_wall / floor:.3f}")
    print(f"allennlp tune --no-data-reuse       {no_reuse_wall:8.1f} s   ratio {no_reuse_wall / floor:.3f}")
    print(f"separate allennlp train processes   {separate_wall:8.1f} s   tune/separate {reuse_wall / separate_wall:.3f}")
    one_read = read_seconds(scenario, "reuse")
    print(f"reading + vocabulary: {one_read:.1f} s timed alone, {read_and_vocab:.1f} s per trial saved by reuse")
    print(
        f"separate - tune = {separate_wall - reuse_wall:.1f} s  vs (N-1) x reading+vocabulary = "
        f"{(n - 1) * one_read:.1f} s"
    )
    print(f"values identical with and without reuse: {reuse_values}")
    issue_floor = imports + one_read + floor
    print(
        f"floor as the issue counts it: one import {imports:.1f} s + one read {one_read:.1f} s + training "
        f"{floor:.1f} s = {issue_floor:.1f} s ({issue_floor / floor:.3f} x training); "
        f"tune beyond it {reuse_wall - issue_floor:.1f} s ({(reuse_wall - issue_floor) / n:.2f} s per trial)"
    )
    if old_python is not None:
        compare_old_plugin(scenario, old_python, reuse_wall, reuse_values)


def compare_old_plugin(scenario: Scenario, python: Path, tune_wall: float, values: List[float]) -> None:
    """Run the old plugin on the trials of study "reuse"; print its ratios and whether its values match."""
    old = run_old_plugin(scenario, "reuse", python)
    print(
        f"old allennlp-optuna {OLD_PLUGIN_VERSION} (Optuna 2)  {old.wall:8.1f} s   its floor {old.floor:.1f} s   "
        f"old/floor {old.wall / old.floor:.3f}"
    )
    print(f"tune/old {tune_wall / old.wall:.3f}")
    if old.values == values:
        print(f"values identical with the old plugin: {old.values}")
    else:
        print(f"WARNING: the old plugin's values differ from ours: old {old.values}, ours {values}")


def memory_after_trials(root: Path, n_trials: int = 30, data_fraction: float = 1.0) -> List[float]:
    """Resident memory (MB) after each trial of one in-process study of the tiny CNN."""
    import optuna

    from allennlp_optuna.trial.memory import frozen_between_trials
    from allennlp_optuna.study.search_space import SearchSpace
    from allennlp_optuna.study.settings import ARCHIVE_ALL, TuneSettings
    from allennlp_optuna.trial.objective import TrialObjective

    scenario = make_scenario(
        root / "memory", source="rotten_tomatoes", n_train=max(2, round(2000 * data_fraction)),
        n_dev=max(2, round(500 * data_fraction)), max_tokens=None,
        num_epochs=1, n_trials=n_trials, hparams=TINY_CNN,
    )
    settings = TuneSettings.parse(
        str(scenario.directory / "config.jsonnet"),
        "",  # the search space is given below as entries, not read from a file
        str(scenario.directory / "result"),
        metrics=scenario.metrics,
        file_friendly_logging=True,
        archive=ARCHIVE_ALL,
    )
    objective = TrialObjective(settings, SearchSpace.from_entries(TINY_CNN))
    rss: List[float] = []

    def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        rss.append(psutil.Process().memory_info().rss / 2**20)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=1))
    with frozen_between_trials(), output_to(scenario.directory / "bench.log"):
        study.optimize(objective, n_trials=n_trials, callbacks=[*objective.study_callbacks(), record])
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("training", "reading"), default=None)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the scenarios here (default: a temp dir)")
    parser.add_argument("--data-fraction", type=float, default=1.0, help="shrink every data set (quick check)")
    parser.add_argument("--n-trials", type=int, default=None, help="trials per study (default: 4 / 6; at least 2)")
    parser.add_argument("--memory-trials", type=int, default=30)
    parser.add_argument(
        "--old-plugin-venv", type=Path, default=None,
        help=f"also run the old plugin (allennlp-optuna {OLD_PLUGIN_VERSION}) from this venv, "
        "created if missing (default: skip it)",
    )
    args = parser.parse_args()
    if args.n_trials is not None and args.n_trials < 2:
        parser.error(f"--n-trials must be at least 2 (the reuse saving is per trial after the first), got {args.n_trials}")
    old_python = None if args.old_plugin_venv is None else make_venv(args.old_plugin_venv)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="allennlp-optuna-bench-"))
    all_scenarios = {} if args.memory_only else scenarios(root, args.data_fraction, args.n_trials)
    for name, scenario in all_scenarios.items():
        if args.only in (None, name):
            measure(name, scenario, old_python)
    if not args.skip_memory:
        rss = memory_after_trials(root, args.memory_trials, args.data_fraction)
        print(f"\n== memory: resident after trial 1 {rss[0]:.0f} MB, after trial {len(rss)} {rss[-1]:.0f} MB, "
              f"change {100 * (rss[-1] - rss[0]) / rss[0]:+.1f}%")
        print("   after each trial (MB): " + " ".join(f"{r:.0f}" for r in rss))


if __name__ == "__main__":
    main()
