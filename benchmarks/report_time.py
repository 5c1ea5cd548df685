"""How long `tune` spends per trial keeping DIR/report.html and DIR/trials.csv current.

Builds an in-memory study of N completed trials over the guide's six hyperparameters (with
learning curves) and times `write_report`, which the report callback runs after every trial.
Prints, for each N, the seconds of one `write_report` and the size of report.html. Run from
the repository root:

    python -m benchmarks.report_time [N_TRIALS ...]     # default: 10 50 200
"""
import argparse
import math
import random
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from allennlp_optuna.output.report import write_report

DISTRIBUTIONS = {
    "embedding_dim": IntDistribution(32, 256),
    "max_filter_size": IntDistribution(2, 6),
    "num_filters": IntDistribution(32, 256),
    "output_dim": IntDistribution(32, 256),
    "dropout": FloatDistribution(0.0, 0.8),
    "lr": FloatDistribution(5e-3, 5e-1, log=True),
    "optimizer": CategoricalDistribution(["adam", "sgd"]),
}


def study_of(n_trials: int) -> optuna.Study:
    rng = random.Random(0)
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("metrics", "best_validation_accuracy")
    for number in range(n_trials):
        params = {
            "embedding_dim": rng.randint(32, 256), "max_filter_size": rng.randint(2, 6),
            "num_filters": rng.randint(32, 256), "output_dim": rng.randint(32, 256),
            "dropout": rng.uniform(0, 0.8), "lr": math.exp(rng.uniform(math.log(5e-3), math.log(5e-1))),
            "optimizer": rng.choice(["adam", "sgd"]),
        }
        curve = {epoch: 0.5 + 0.4 * (1 - math.exp(-epoch * params["lr"] * 10)) for epoch in range(15)}
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=max(curve.values()), params=params,
                                     distributions=DISTRIBUTIONS, intermediate_values=curve))
    return study


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", metavar="N_TRIALS", type=int, nargs="*", default=[10, 50, 200])
    sizes = parser.parse_args(argv).sizes
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as directory:
        write_report(study_of(3), str(Path(directory) / "warmup.html"))
        for size in sizes:
            study = study_of(size)
            started = time.perf_counter()
            write_report(study, str(Path(directory) / "report.html"), str(Path(directory) / "trials.csv"))
            seconds = time.perf_counter() - started
            kib = (Path(directory) / "report.html").stat().st_size / 1024
            print(f"{size:5d} trials: write_report {seconds:6.2f} s, report.html {kib:8.0f} KiB")


if __name__ == "__main__":
    main()
