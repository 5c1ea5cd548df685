"""Ray Tune's ASHA with random search on an AllenNLP config: the allentune approach, for comparison.

:mod:`benchmarks.time_to_quality` runs this script with the Python of its Ray venv (Ray Tune,
AllenNLP 2.10.1; not this package, which it never imports). Each trial trains the config as
`allennlp train` would (``Params.from_file(config, ext_vars=...)`` and AllenNLP's
``train_model``) in its own serialization directory; a ``TrainerCallback`` reports the epoch's
``validation_accuracy`` to Ray Tune after every epoch, so that ASHA can stop the trial at a rung.
Random search (``BasicVariantGenerator``, seeded) draws the values from the same search-space
file ``allennlp tune`` reads (``[{"type": ..., "attributes": {...}}]``).

One trial at a time: Ray is started with ``--threads`` CPUs, every trial asks for all of them,
the random search generates one trial at a time (``max_concurrent=1``), and each trial sets
torch's thread pool to ``--threads`` (Ray would otherwise set ``OMP_NUM_THREADS`` for its workers
itself) and reports the size it got.

Every trial's start, epoch results, end, and ASHA's decision to stop it are appended to
``--events`` (JSON lines, with ``time.time()`` stamps) as the driver sees them, so they survive
the process being stopped at the budget.

    python benchmarks/ray_asha_runner.py --config config.jsonnet --hparams hparams.json \\
        --workdir run --events run/events.jsonl --budget 600 --epochs 5 --seed 0 --threads 2
"""
import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List

METRIC = "validation_accuracy"
"""What each epoch reports, and what ASHA compares at its rungs."""
REPORT_CALLBACK = "ray_tune_report"


def search_space(entries: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Ray Tune's distributions for the entries of an ``allennlp tune`` search-space file."""
    from ray import tune

    space = {}
    for entry in entries:
        kind, attributes = entry["type"], dict(entry["attributes"])
        name = attributes.pop("name")
        low, high = attributes.get("low"), attributes.get("high")
        step, log = attributes.get("step"), attributes.get("log", False)
        if kind == "int":
            if log:
                space[name] = tune.lograndint(low, high + 1)
            elif step not in (None, 1):
                space[name] = tune.qrandint(low, high, step)  # upper bound included
            else:
                space[name] = tune.randint(low, high + 1)  # upper bound excluded
        elif kind == "float":
            if log:
                space[name] = tune.loguniform(low, high)
            elif step is not None:
                space[name] = tune.quniform(low, high, step)
            else:
                space[name] = tune.uniform(low, high)
        elif kind == "categorical":
            space[name] = tune.choice(attributes["choices"])
        else:
            raise ValueError(f"search-space entry {name!r}: type {kind!r} has no Ray Tune counterpart here")
    return space


def train_trial(values: Dict[str, Any], settings: Dict[str, Any]) -> None:
    """One trial: train the config with ``values`` as its ``std.extVar``s, reporting every epoch."""
    import torch
    from allennlp.commands.train import train_model
    from allennlp.common import Params
    from allennlp.training.callbacks import TrainerCallback
    from ray import tune

    torch.set_num_threads(settings["threads"])

    # Registered here, in the Ray worker that runs the trial: Ray ships this function to the worker by
    # value, and the worker never imports this script (nor its typing names, hence no annotations).
    @TrainerCallback.register(REPORT_CALLBACK, exist_ok=True)
    class RayTuneReport(TrainerCallback):
        def on_epoch(self, trainer, metrics, epoch, is_primary=True, **kwargs):
            if is_primary and epoch >= 0:
                tune.report({METRIC: metrics[METRIC], "epoch": epoch + 1, "torch_threads": torch.get_num_threads()})

    ext_vars = {name: json.dumps(value) if isinstance(value, bool) else str(value) for name, value in values.items()}
    overrides = json.dumps({"trainer": {"callbacks": [{"type": REPORT_CALLBACK}]}})
    params = Params.from_file(settings["config"], params_overrides=overrides, ext_vars=ext_vars)
    serialization_dir = Path(settings["trials_dir"]) / f"trial_{tune.get_context().get_trial_id()}"
    train_model(params, str(serialization_dir), file_friendly_logging=True)


def event_log(path: Path):
    """A Ray Tune callback appending each trial's start, results and end to ``path`` (JSON lines)."""
    from ray import tune

    class EventLog(tune.Callback):
        def _write(self, event: str, trial, **fields: Any) -> None:
            with open(path, "a") as file:
                file.write(json.dumps({"event": event, "trial": trial.trial_id, "time": time.time(), **fields}) + "\n")

        def on_trial_start(self, iteration, trials, trial, **info) -> None:
            self._write("start", trial, params=trial.config)

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            self._write("result", trial, value=result[METRIC], epoch=result["epoch"], torch_threads=result["torch_threads"])

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self._write("end", trial)

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self._write("error", trial)

    return EventLog()


def logged_asha(path: Path, max_t: int, grace_period: int, reduction_factor: float):
    """ASHA on the epochs, appending a ``stop`` event to ``path`` when it stops a trial before ``max_t``.

    Ray also ends the trials that are running when the time budget runs out; only this event
    tells a trial that ASHA stopped (a finished, pruned trial) from one cut by the budget.
    """
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    class LoggedASHA(ASHAScheduler):
        def on_trial_result(self, tune_controller, trial, result):
            decision = super().on_trial_result(tune_controller, trial, result)
            if decision == TrialScheduler.STOP and result["training_iteration"] < max_t:
                with open(path, "a") as file:
                    file.write(json.dumps({"event": "stop", "trial": trial.trial_id, "time": time.time()}) + "\n")
            return decision

    return LoggedASHA(
        time_attr="training_iteration", max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor,
    )


def run(args: argparse.Namespace) -> None:
    """Start Ray on ``args.threads`` CPUs and run ASHA with random search until the budget is spent."""
    import ray
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    workdir = args.workdir.resolve()
    settings = {"config": str(args.config.resolve()), "trials_dir": str(workdir / "result"), "threads": args.threads}
    ray.init(num_cpus=args.threads, include_dashboard=False, object_store_memory=256 * 2**20, log_to_driver=False)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(train_trial, settings=settings), {"cpu": args.threads}),
        param_space=search_space(json.loads(args.hparams.read_text())),
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            scheduler=logged_asha(
                args.events, max_t=args.epochs, grace_period=args.grace_period,
                reduction_factor=args.reduction_factor,
            ),
            # The generator's own limit: Tune ignores max_concurrent_trials for a generator.
            search_alg=BasicVariantGenerator(max_concurrent=1, random_state=args.seed),
            num_samples=-1,  # draw trials until the time budget ends the experiment
            # Counted from --start (when the benchmark launched this process), so Ray's start-up is in it.
            time_budget_s=max(1.0, args.budget - (time.time() - args.start)),
            reuse_actors=args.reuse_actors,
        ),
        run_config=tune.RunConfig(
            name="asha", storage_path=str(workdir / "ray_results"), callbacks=[event_log(args.events)], verbose=1,
        ),
    )
    tuner.fit()
    ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the Jsonnet config every trial trains")
    parser.add_argument("--hparams", type=Path, required=True, help="the search space, as allennlp tune reads it")
    parser.add_argument("--workdir", type=Path, required=True, help="trials train in WORKDIR/result/trial_ID")
    parser.add_argument("--events", type=Path, required=True, help="JSON-lines file of the trials' events")
    parser.add_argument("--budget", type=float, required=True, help="seconds from --start to the end of the search")
    parser.add_argument("--start", type=float, default=None, help="time.time() the budget counts from (default: now)")
    parser.add_argument("--epochs", type=int, required=True, help="the config's trainer.num_epochs (ASHA's max_t)")
    parser.add_argument("--seed", type=int, default=0, help="random search's seed")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPUs for Ray and torch threads per trial")
    parser.add_argument("--grace-period", type=int, default=1, help="ASHA: epochs before the first rung")
    parser.add_argument("--reduction-factor", type=float, default=3, help="ASHA: 1/fraction promoted at each rung")
    parser.add_argument("--reuse-actors", action="store_true", help="run trials in one long-lived worker")
    args = parser.parse_args()
    if args.start is None:
        args.start = time.time()
    run(args)


if __name__ == "__main__":
    main()
