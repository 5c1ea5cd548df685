"""optuna-dashboard reads a study that `allennlp tune` wrote: every trial, as the plugin stored it.

The real dashboard server runs on a free loopback port; the test reads its HTTP API (what its
web page shows) and stops it.
"""
import importlib.util
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator

import optuna
from allennlp.common.checks import ConfigurationError
import pytest
from optuna.trial import TrialState

from allennlp_optuna.tuning import tune
from benchmarks.postgres import free_port
from tests.conftest import CONFIG, HPARAMS, write_json

WAIT_SECONDS = 60
BASELINE = {"embedding_dim": 14, "max_filter_size": 2, "num_filters": 8, "dropout": 0.5, "lr": 0.07, "optimizer": "adam"}
LATER = {**BASELINE, "embedding_dim": 6}


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture
def dashboard_of(tmp_path: Path) -> Iterator[Any]:
    """Start `optuna-dashboard STORAGE` on 127.0.0.1 (call it with the storage); stop it after the test."""
    if importlib.util.find_spec("optuna_dashboard") is None:
        pytest.fail("optuna-dashboard is not installed: pip install 'allennlp-optuna[dashboard]'", pytrace=False)
    servers = []

    def start(storage: str) -> str:
        port = free_port()
        code = f"import optuna_dashboard; optuna_dashboard.run_server({storage!r}, host='127.0.0.1', port={port})"
        log = open(tmp_path / "dashboard.log", "w")
        servers.append((subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT), log))
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + WAIT_SECONDS
        while True:
            try:
                get_json(f"{url}/api/meta")
                return url
            except OSError:
                if time.time() > deadline or servers[-1][0].poll() is not None:
                    pytest.fail(f"optuna-dashboard did not answer on {url}: {(tmp_path / 'dashboard.log').read_text()}")
                time.sleep(0.5)

    yield start
    for server, log in servers:
        server.terminate()
        server.wait(10)
        log.close()


def test_the_dashboard_shows_every_trial_tune_stored(workdir: Path, storage: str, dashboard_of: Any) -> None:
    common: Dict[str, Any] = dict(storage=storage, metrics="best_validation_accuracy", n_trials=1,
                                  skip_if_exists=True, overrides='{"trainer.num_epochs": 2}')
    result = str(workdir / "result")
    with pytest.raises(ConfigurationError, match="no trial finished"):  # --skip-exception, and every trial failed
        tune(str(CONFIG), str(HPARAMS), result, skip_exception=True,
             **{**common, "overrides": '{"trainer.num_epochs": 2, "trainer.optimizer.type": "no_such_optimizer"}'})
    threshold = write_json(workdir / "prune.json", {"pruner": {"type": "ThresholdPruner",
                                                                "attributes": {"lower": 1.1, "n_warmup_steps": 0}}})
    tune(str(CONFIG), str(HPARAMS), result, optuna_param_path=str(threshold), **common)
    values = [str(write_json(workdir / name, params)) for name, params in (("a.json", BASELINE), ("b.json", LATER))]
    tune(str(CONFIG), str(HPARAMS), result, enqueue_trial=values, **common)
    study = optuna.load_study(study_name="classifier", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.PRUNED, TrialState.COMPLETE,
                                               TrialState.WAITING]

    url = dashboard_of(storage)
    studies = {s["study_name"]: s for s in get_json(f"{url}/api/studies")["study_summaries"]}
    detail = get_json(f"{url}/api/studies/{studies['classifier']['study_id']}")

    shown = {t["number"]: t for t in detail["trials"]}
    assert sorted(shown) == [0, 1, 2, 3]
    for trial in study.trials:
        row = shown[trial.number]
        assert row["state"] == trial.state.name.capitalize()
        assert {p["name"]: p["param_external_value"] for p in row["params"]} == {
            k: str(v) for k, v in trial.params.items()
        }
        assert row.get("values") == trial.values
        assert {v["step"]: v["value"] for v in row["intermediate_values"]} == trial.intermediate_values
        assert {a["key"]: a["value"] for a in row["user_attrs"]} == {
            k: v if isinstance(v, str) else str(v) if isinstance(v, (int, float)) else json.dumps(v)
            for k, v in trial.user_attrs.items()
        }
    assert "no_such_optimizer" in dict((a["key"], a["value"]) for a in shown[0]["user_attrs"])["fail_reason"]
    assert shown[1]["intermediate_values"] and shown[3]["fixed_params"]  # pruned at an epoch; enqueued values
    assert [b["number"] for b in detail["best_trials"]] == [2]
