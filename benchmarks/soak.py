"""Soak: many workers on PostgreSQL, very short trials, random SIGKILLs, one PostgreSQL restart.

Several `allennlp tune` commands (each with ``--n-workers``) join one study on a throwaway
PostgreSQL server (:mod:`benchmarks.postgres`) with a study-wide ``--max-trials`` and a
MedianPruner. Every few seconds a random worker that is training a trial is killed with
SIGKILL (as the out-of-memory killer would); half-way through the budget the database server is
stopped for a few seconds and started again. A command that exits is started again, as a
cluster's scheduler would. At the end the study is audited and the figures printed:

* trials completed (COMPLETE + PRUNED) and the budget overshoot (completed - max-trials, must be 0);
* kills, FAIL trials and retries (trials that retry a killed one), resumed retries;
* trials left RUNNING (must be 0);
* COMPLETE trials whose value disagrees with their ``metrics.json`` (must be 0);
* trial directories used by two trials (must be 0).

Run from the repository root (needs Debian's postgresql, as `make test` does):

    python -m benchmarks.soak                       # 2 commands x 2 workers, 40 trials, a kill every 4 s
    python -m benchmarks.soak --commands 3 --workers 2 --max-trials 60 --kill-every 3
"""
import argparse
import json
import os
import random
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import optuna
from optuna.trial import TrialState

from benchmarks.postgres import PostgresServer, throwaway_postgres
from benchmarks.scenario import ALLENNLP, FIXTURE_CONFIG, REPO, Scenario, make_scenario

HPARAMS = REPO / "test_fixtures" / "config" / "hparams.json"
STUDY = "soak"


@dataclass
class SoakRun:
    """The commands of one soak, and what was done to them."""

    scenario: Scenario
    server: PostgresServer
    args: argparse.Namespace
    commands: List[subprocess.Popen] = field(default_factory=list)
    kills: int = 0
    command_restarts: int = 0
    database_restarts: int = 0

    def argv(self) -> List[str]:
        return [*ALLENNLP, "tune", "config.jsonnet", "hparams.json", "-s", "result", "--study-name", STUDY,
                "--storage", self.server.url, "--metrics", "best_validation_accuracy",
                "--optuna-param-path", "optuna.json", "--n-workers", str(self.args.workers),
                "--max-trials", str(self.args.max_trials), "--max-worker-restarts", "1000",
                "--skip-if-exists", "--file-friendly-logging"]

    def start_command(self, index: int) -> subprocess.Popen:
        log = open(self.scenario.directory / f"tune_{index}.log", "a")
        return subprocess.Popen(self.argv(), cwd=self.scenario.directory, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def study(self) -> Optional[optuna.Study]:
        try:
            return optuna.load_study(study_name=STUDY, storage=self.server.url)
        except Exception:  # not created yet, or the server is down
            return None


def kill_a_training_worker(run: SoakRun) -> None:
    """SIGKILL the process of a random RUNNING trial (never a command itself: its workers are children)."""
    study = run.study()
    commands = {command.pid for command in run.commands}
    running = [t for t in study.get_trials(states=(TrialState.RUNNING,))] if study else []
    pids = [t.system_attrs.get("allennlp_optuna:worker", {}).get("pid") for t in running]
    pids = [pid for pid in pids if pid and pid not in commands]
    if pids:
        try:
            os.kill(random.choice(pids), signal.SIGKILL)
            run.kills += 1
        except ProcessLookupError:
            pass


def finished(run: SoakRun) -> int:
    study = run.study()
    return len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) if study else 0


def soak(run: SoakRun) -> float:
    """Run the commands until they all end (restarting any that exits early); return the wall time."""
    start = time.perf_counter()
    run.commands = [run.start_command(i) for i in range(run.args.commands)]
    next_kill = time.monotonic() + run.args.kill_every
    while any(command.poll() is None for command in run.commands):
        time.sleep(0.5)
        done = finished(run)
        if time.monotonic() >= next_kill and done < run.args.max_trials - 2:
            kill_a_training_worker(run)
            next_kill = time.monotonic() + run.args.kill_every
        if not run.database_restarts and done >= run.args.max_trials // 2:
            run.server.restart(run.args.down_seconds)
            run.database_restarts += 1
        for index, command in enumerate(run.commands):
            if command.poll() not in (None, 0) and done < run.args.max_trials:
                run.commands[index] = run.start_command(index)
                run.command_restarts += 1
    return time.perf_counter() - start


def audit(run: SoakRun) -> Dict[str, int]:
    """The figures of the finished study (see the module's docstring)."""
    from allennlp_optuna.faults.recovery import retried_trial_number

    study = run.study()
    assert study is not None
    trials = study.get_trials()
    states = [t.state for t in trials]
    mismatches, directories = 0, {}
    for trial in trials:
        directory = trial.user_attrs.get("serialization_dir")
        if directory:
            directories[directory] = directories.get(directory, 0) + 1
        if trial.state == TrialState.COMPLETE:
            metrics = json.loads((Path(directory) / "metrics.json").read_text())
            mismatches += metrics["best_validation_accuracy"] != trial.value
    completed = states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED)
    logs = "".join(p.read_text() for p in run.scenario.directory.glob("tune_*.log"))
    return {
        "completed": completed, "pruned": states.count(TrialState.PRUNED),
        "overshoot": completed - run.args.max_trials, "fail": states.count(TrialState.FAIL),
        "over_budget": sum("over_budget" in t.user_attrs for t in trials),
        "retries": sum(retried_trial_number(t) is not None for t in trials),
        "resumed": sum("resumed_from" in t.user_attrs for t in trials),
        "running": states.count(TrialState.RUNNING), "waiting": states.count(TrialState.WAITING),
        "mismatches": mismatches, "shared_directories": sum(n > 1 for n in directories.values()),
        "outage_waits": logs.count("is unreachable"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=2, help="allennlp tune commands joining the study")
    parser.add_argument("--workers", type=int, default=2, help="--n-workers of each command")
    parser.add_argument("--max-trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--kill-every", type=float, default=4.0, help="seconds between SIGKILLs")
    parser.add_argument("--down-seconds", type=float, default=5.0, help="how long the database is down")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", metavar="DIR", help="write the scenario, trials and logs to DIR and keep them")
    args = parser.parse_args()
    random.seed(args.seed)

    with tempfile.TemporaryDirectory() as tmp, throwaway_postgres() as server:
        scenario = make_scenario(
            Path(args.keep or tmp) / "soak", source=None, n_train=800, n_dev=100, max_tokens=100, num_epochs=args.epochs,
            n_trials=args.max_trials, hparams=json.loads(HPARAMS.read_text()), seed=args.seed, config=FIXTURE_CONFIG,
        )
        settings = json.loads((scenario.directory / "optuna.json").read_text())
        settings["pruner"] = {"type": "MedianPruner", "attributes": {"n_startup_trials": 5}}
        (scenario.directory / "optuna.json").write_text(json.dumps(settings))
        run = SoakRun(scenario, server, args)
        seconds = soak(run)
        figures = audit(run)
    print(f"{args.commands} commands x {args.workers} workers on PostgreSQL, --max-trials {args.max_trials}, "
          f"{args.epochs} epochs per trial, a SIGKILL every {args.kill_every:g} s, database down {args.down_seconds:g} s once")
    print(f"wall time: {seconds:.0f} s; workers killed: {run.kills}; commands restarted: {run.command_restarts}; "
          f"database restarts: {run.database_restarts} (storage calls that waited: {figures['outage_waits']})")
    print(f"trials completed: {figures['completed']} (of them pruned: {figures['pruned']}); FAIL: {figures['fail']} "
          f"(lost the race for the budget's last place: {figures['over_budget']}); "
          f"retries: {figures['retries']} (resumed from a checkpoint or a finished run: {figures['resumed']})")
    print(f"budget overshoot (must be 0): {figures['overshoot']}")
    print(f"trials left RUNNING (must be 0): {figures['running']}; retries left WAITING: {figures['waiting']}")
    print(f"trials whose metrics.json disagrees with the study (must be 0): {figures['mismatches']}")
    print(f"trial directories used by two trials (must be 0): {figures['shared_directories']}")


if __name__ == "__main__":
    main()
