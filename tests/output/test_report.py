"""The study report: `tune-report`, the live DIR/report.html of `tune`, and the enqueued baseline."""
import csv
import html
import itertools
import logging
import os
import re
import statistics
from pathlib import Path
from typing import Dict, Iterator, List

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from allennlp_optuna.output.expected_performance import expected_best_curve
from allennlp_optuna.output.report import ReportWriter, render_report, trials_csv, write_report
from allennlp_optuna.output.summary import summarize
from allennlp_optuna.tuning import tune
from tests.browser import rendered_dom, screenshot
from tests.commands.test_bad_input import assert_refused
from tests.conftest import CONFIG, HPARAMS, REPO, read_json, run_cli, write_json

ARTIFACTS = REPO / "test-artifacts"
PLOTS = ["history", "expected-performance", "intermediate-values", "importances", "parallel-coordinates", "slice"]
BASELINE = {"embedding_dim": 14, "max_filter_size": 2, "num_filters": 8, "dropout": 0.5, "lr": 0.07, "optimizer": "adam"}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[optuna.Study]:
    """A finished 3-trial study of the fixture CNN whose trial 0 is the enqueued baseline."""
    directory = tmp_path_factory.mktemp("tuned")
    baseline = write_json(directory / "baseline.json", BASELINE)
    sampler = write_json(directory / "optuna.json", {"sampler": {"type": "RandomSampler", "attributes": {"seed": 1}}})
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    study = tune(
        str(CONFIG),
        str(HPARAMS),
        str(directory / "result"),
        storage=f"sqlite:///{directory / 'study.db'}",
        metrics="best_validation_accuracy",
        n_trials=3,
        optuna_param_path=str(sampler),
        enqueue_trial=[str(baseline)],
        file_friendly_logging=True,
    )
    root.handlers[:] = handlers
    root.setLevel(level)
    yield study


def result_dir(study: optuna.Study) -> Path:
    return Path(study.trials[0].user_attrs["serialization_dir"]).parent


def read_csv(path: Path) -> List[Dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def plot_segment(page: str, anchor: str) -> str:
    start = page.index(f'<section class="card" id="{anchor}">')
    return page[start:page.index("</section>", start)]


def test_enqueued_baseline_runs_as_trial_0_with_exactly_its_values(tuned: optuna.Study) -> None:
    baseline = tuned.trials[0]

    assert baseline.params == BASELINE
    assert baseline.user_attrs["enqueued_from"] == "baseline.json"
    assert baseline.value == read_json(result_dir(tuned) / "trial_0" / "metrics.json")["best_validation_accuracy"]
    assert all("enqueued_from" not in t.user_attrs for t in tuned.trials[1:])


def test_tune_keeps_a_report_with_every_section_in_its_directory(tuned: optuna.Study) -> None:
    page = (result_dir(tuned) / "report.html").read_text(encoding="utf-8")

    summary = plot_segment(page, "summary")
    assert re.findall(r"<li>(.*?)</li>", summary) == [html.escape(line) for line in summarize(tuned).splitlines()]
    for anchor in ["history", "expected-performance", "importances", "parallel-coordinates", "slice"]:
        assert f'id="plot-{anchor}"' in plot_segment(page, anchor), anchor
    assert "No trial reported intermediate values" in plot_segment(page, "intermediate-values")
    assert "Estimated from only 3 completed trials" in plot_segment(page, "importances")
    baseline_label = f"baseline: baseline.json, trial 0 = {tuned.trials[0].value:.6g}"
    assert baseline_label in plot_segment(page, "history")
    assert baseline_label in plot_segment(page, "expected-performance")
    rows = re.findall(r"<tr( class=\"enqueued\")?><td data-sort=\"(\d+)\">", page)
    assert rows == [(' class="enqueued"', "0"), ("", "1"), ("", "2")]
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)  # plotly.js is embedded: works offline
    assert 'http-equiv="refresh"' not in page  # nothing runs any more


def test_trials_csv_rows_equal_the_study_trials(tuned: optuna.Study) -> None:
    rows = read_csv(result_dir(tuned) / "trials.csv")

    assert [int(r["number"]) for r in rows] == [t.number for t in tuned.trials]
    for row, trial in zip(rows, tuned.trials):
        assert row["state"] == trial.state.name
        assert float(row["value"]) == trial.value
        assert {k[len("params_"):]: v for k, v in row.items() if k.startswith("params_")} == {
            name: str(value) for name, value in trial.params.items()
        }
        assert row["directory"] == trial.user_attrs["serialization_dir"]
        assert float(row["duration_seconds"]) == trial.duration.total_seconds()
        assert row["fail_reason"] == ""
    assert [r["enqueued_from"] for r in rows] == ["baseline.json", "", ""]


def test_tune_report_command_writes_the_page_and_csv(
    tuned: optuna.Study, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    storage = f"sqlite:///{result_dir(tuned).parent / 'study.db'}"
    result = run_cli(["tune-report", "--storage", storage, "-o", "page.html", "--csv", "trials.csv"], capsys)

    assert result.code == 0, result
    assert result.out.strip().splitlines()[-1] == "Wrote page.html and trials.csv"
    assert (workdir / "trials.csv").read_text(encoding="utf-8") == trials_csv(tuned)
    assert 'id="plot-history"' in (workdir / "page.html").read_text(encoding="utf-8")

    beside = run_cli(["tune-report", "--storage", storage], capsys)
    assert beside.out.strip().splitlines()[-1] == f"Wrote {result_dir(tuned) / 'report.html'}"  # where tune keeps it

    missing = run_cli(["tune-report", "--storage", storage, "--study-name", "imdb"], capsys)
    assert missing.code == 2
    assert missing.err.strip().splitlines()[-1] == (
        f"allennlp tune-report: error: no study 'imdb' in {storage}; studies there: classifier"
    )


def mixed_study(storage: str) -> optuna.Study:
    """A study as a pruner and a crash leave it: complete, pruned, failed and running trials."""
    study = optuna.create_study(study_name="mixed", storage=storage, direction="maximize")
    study.set_user_attr("metrics", "best_validation_accuracy")
    distributions = {"lr": FloatDistribution(0.001, 0.3, log=True), "optimizer": CategoricalDistribution(["adam", "sgd"])}
    curves = {0: [0.5, 0.7, 0.8], 1: [0.4], 2: [], 3: [0.6, 0.75, 0.9], 4: [0.45, 0.5], 5: [0.55, 0.6, 0.65]}
    states = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE, TrialState.PRUNED,
              TrialState.COMPLETE]
    for number, state in enumerate(states):
        params = {"lr": 0.001 * 3 ** number, "optimizer": ["adam", "sgd"][number % 2]}
        study.add_trial(create_trial(
            state=state,
            value=curves[number][-1] if state == TrialState.COMPLETE else None,
            params=params,
            distributions=distributions,
            intermediate_values=dict(enumerate(curves[number])),
            user_attrs={"fail_reason": "Traceback (most recent call last):\nRuntimeError: CUDA out of memory"}
            if state == TrialState.FAIL else {"serialization_dir": f"/runs/trial_{number}"},
        ))
    study.ask()  # another worker's trial, still running
    return study


def test_a_study_with_failed_pruned_and_running_trials_renders(workdir: Path, storage: str) -> None:
    study = mixed_study(storage)
    write_report(study, str(workdir / "report.html"), csv_path=str(workdir / "trials.csv"))

    page = (workdir / "report.html").read_text(encoding="utf-8")
    assert 'id="plot-intermediate-values"' in page
    assert "<summary>RuntimeError: CUDA out of memory</summary>" in page
    assert 'http-equiv="refresh"' in page  # a trial still runs: the page reloads itself
    rows = read_csv(workdir / "trials.csv")
    assert [(r["number"], r["state"], r["fail_reason"]) for r in rows] == [
        ("0", "COMPLETE", ""), ("1", "PRUNED", ""), ("2", "FAIL", "RuntimeError: CUDA out of memory"),
        ("3", "COMPLETE", ""), ("4", "PRUNED", ""), ("5", "COMPLETE", ""), ("6", "RUNNING", ""),
    ]


def test_every_plot_renders_in_a_headless_browser(tuned: optuna.Study, workdir: Path, storage: str) -> None:
    mixed = workdir / "mixed.html"
    write_report(mixed_study(storage), str(mixed))
    pages = {"tuned": (result_dir(tuned) / "report.html", PLOTS[:2] + PLOTS[3:]), "mixed": (mixed, PLOTS)}

    for name, (page, plots) in pages.items():
        dom = rendered_dom(page)
        assert re.search(r'<pre id="js-errors" hidden="">\s*</pre>', dom), dom[:3000]
        for anchor in plots:
            plot = plot_segment(dom, anchor)
            assert 'class="main-svg"' in plot and 'class="trace ' in plot, (name, anchor)
        screenshot(page, ARTIFACTS / f"report-{name}.png")


def test_tune_summary_agrees_with_the_report_and_trial_lines_are_printed(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    baseline = write_json(workdir / "baseline.json", {"lr": 0.1, "optimizer": "sgd"})
    result = run_cli(
        ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--n-trials", "2", "--metrics",
         "best_validation_accuracy", "--enqueue-trial", str(baseline)],
        capsys,
    )

    assert result.code == 0, result
    printed = result.out.strip().splitlines()
    study = optuna.load_study(study_name="classifier", storage="sqlite:///allennlp_optuna.db")
    assert study.trials[0].params["lr"] == 0.1 and study.trials[0].params["optimizer"] == "sgd"
    page = (workdir / "result" / "report.html").read_text(encoding="utf-8")
    summary = [html.unescape(line) for line in re.findall(r"<li>(.*?)</li>", plot_segment(page, "summary"))]
    assert printed[-9:-4] == summary
    assert printed[-4] == f"Report: {workdir / 'result' / 'report.html'}"
    finished = [line.split(":")[0] for line in printed if re.match(r"trial \d+ (COMPLETE|PRUNED|FAIL)", line)]
    assert finished == ["trial 0 COMPLETE", "trial 1 COMPLETE"]
    assert printed[-10].startswith(
        f"done: 2 trials in "
    ) and printed[-10].endswith(f"(2 COMPLETE); best best_validation_accuracy={study.best_value:.4g} (trial {study.best_trial.number})")


def test_file_friendly_logging_keeps_its_allennlp_meaning(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    result = run_cli(
        ["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--n-trials", "1", "--file-friendly-logging"], capsys
    )

    assert result.code == 0, result
    assert "trial 0 COMPLETE: best_validation_loss=" in result.out  # the console still shows the study
    assert "\r" not in (workdir / "result" / "trial_0" / "out.log").read_text(encoding="utf-8")
    assert len(read_csv(workdir / "result" / "trials.csv")) == 1


def test_report_is_rewritten_after_every_trial_and_read_whole(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize")
    seen: List[int] = []

    def objective(trial: optuna.Trial) -> float:
        if trial.number:
            seen.append(len(read_csv(tmp_path / "trials.csv")))
        return trial.suggest_float("x", 0, 1)

    study.optimize(objective, n_trials=4, callbacks=[ReportWriter(str(tmp_path))])

    assert seen == [1, 2, 3]
    assert sorted(os.listdir(tmp_path)) == ["report.html", "trials.csv"]  # no temporary file left behind


def test_page_rendering_is_held_to_its_share_of_the_study_time(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize", study_name="quick")
    writer = ReportWriter(str(tmp_path), max_share=1e-6)  # instant trials: render once, then only the CSV

    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3, callbacks=[writer])

    assert len(read_csv(tmp_path / "trials.csv")) == 3
    assert "1 trials: 1 COMPLETE" in (tmp_path / "report.html").read_text()
    writer.write(study)  # what tune does at the end
    assert "3 trials: 3 COMPLETE" in (tmp_path / "report.html").read_text()
    rendered = (tmp_path / "report.html").stat().st_mtime_ns
    writer.write(study)  # nothing changed since: the page is not rendered again
    assert (tmp_path / "report.html").stat().st_mtime_ns == rendered


def test_report_says_when_importances_cannot_be_estimated() -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)

    page = render_report(study)

    assert "Too few trials: fANOVA needs at least 2 completed trials, this study has 1." in page
    assert 'id="plot-importances"' not in page

    flat = optuna.create_study()
    flat.optimize(lambda t: 0.5 + 0 * t.suggest_float("x", 0, 1), n_trials=2)
    page = render_report(flat)
    assert "All 2 completed trials have the same value, so no hyperparameter explains a difference yet." in page


@pytest.mark.parametrize("maximize", [True, False])
def test_expected_best_curve_equals_brute_force_over_all_draws(maximize: bool) -> None:
    values = [0.3, 0.9, 0.5, 0.5]
    best = max if maximize else min

    curve = expected_best_curve(values, maximize=maximize)

    for point in curve:
        outcomes = [best(draw) for draw in itertools.product(values, repeat=point.n)]
        assert point.mean == pytest.approx(statistics.fmean(outcomes))
        assert point.std == pytest.approx(statistics.pstdev(outcomes))
    assert [p.n for p in curve] == [1, 2, 3, 4]


ENQUEUE_ERRORS = {
    "unknown name": ({"learning_rate": 0.1}, "unknown hyperparameter(s) ['learning_rate']; the search space has "
                     "embedding_dim, max_filter_size, num_filters, dropout, lr, optimizer"),
    "out of range": ({"lr": 0.9}, "lr=0.9 is outside the search space (FloatDistribution(high=0.3, log=True, "
                     "low=0.005, step=None)); change the value or widen the range"),
    "not a choice": ({"optimizer": "adagrad"}, 'optimizer="adagrad" is outside the search space '
                     "(CategoricalDistribution(choices=('adam', 'sgd'))); change the value or widen the range"),
    "not an object": ([0.1], "expected a JSON object of hyperparameter values such as {\"lr\": 0.1}, got [0.1]"),
}


@pytest.mark.parametrize("case", ENQUEUE_ERRORS)
def test_bad_enqueue_trial_file_is_refused_before_training(
    case: str, workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    values, message = ENQUEUE_ERRORS[case]
    path = write_json(workdir / "values.json", values)

    result = run_cli(["tune", str(CONFIG), str(HPARAMS), "-s", "result", "--enqueue-trial", str(path)], capsys)

    assert_refused(result, f"--enqueue-trial file {path}: {message}")
    assert not (workdir / "result").exists()
    assert not (workdir / "allennlp_optuna.db").exists()
