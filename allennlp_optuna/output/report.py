"""The study report: one self-contained HTML page and a CSV table of the trials.

The page holds the study summary (the same lines ``allennlp tune`` prints at its end), a
sortable trials table, and plots from ``optuna.visualization``: optimization history with
the enqueued baseline as a reference line, expected validation performance (Dodge et al.
2019), intermediate values, fANOVA parameter importances, parallel coordinates and slices.
plotly.js is embedded once, so the page works offline.

From a script::

    study = optuna.load_study(study_name="imdb_optuna", storage="sqlite:///allennlp_optuna.db")
    write_report(study, "report.html", csv_path="trials.csv")

During ``allennlp tune``, :class:`ReportWriter` rewrites ``DIR/report.html`` and
``DIR/trials.csv`` after every trial; each file is replaced atomically, so a browser (or
another worker writing the same files) never sees half of one.
"""
import csv
import datetime
import functools
import html
import io
import json
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import optuna
from optuna.trial import FrozenTrial, TrialState

from allennlp_optuna.core.compat import pareto_front_constraint_arguments
from allennlp_optuna.study.constraints import Constraints, ConstraintViolations
from allennlp_optuna.study.enqueue import enqueued_from
from allennlp_optuna.output.expected_performance import expected_best_curve
from allennlp_optuna.output.formatting import format_seconds
from allennlp_optuna.output.summary import summary_lines
from allennlp_optuna.study.record import StoredStudy
from allennlp_optuna.core.trial_attrs import REPORT_FILE, TRIALS_FILE, FAIL_REASON_ATTR, RUNS_ATTR, SERIALIZATION_DIR_ATTR, VALUES_STD_ATTR

logger = logging.getLogger(__name__)

MIN_TRIALS_FOR_IMPORTANCE = 2
"""fANOVA needs at least this many completed trials; fewer give a note instead of a plot."""
FEW_TRIALS_FOR_IMPORTANCE = 10
"""Below this many completed trials, importances come with a warning that they are rough."""
REFRESH_SECONDS = 30
"""While trials are running or waiting, the page reloads itself this often."""

_PLOT_HEIGHT = 440
_TEMPLATE = "plotly_white"


def constraint_columns(constraints: Constraints) -> List[str]:
    """The CSV's constraint columns: ``feasible``, ``metric_KEY`` per constrained key, ``violation_KEY<=NUMBER``
    per constraint; none without constraints."""
    if not constraints:
        return []
    return ["feasible", *(f"metric_{key}" for key in constraints.keys), *(f"violation_{t}" for t in constraints.texts)]


@dataclass
class TrialRow:
    """One trial as the table and the CSV show it."""

    number: int
    state: str
    values: Optional[List[float]]
    params: Dict[str, Any]
    duration: Optional[float]
    directory: str
    enqueued_from: str
    fail_reason: str
    fail_traceback: str
    std: Optional[List[float]] = None
    runs: Optional[List[Dict[str, Any]]] = None
    feasible: Optional[bool] = None
    constraint_values: Optional[Dict[str, float]] = None
    violations: Optional[Dict[str, float]] = None

    @property
    def value(self) -> Optional[float]:
        """The value of a single-objective trial."""
        return self.values[0] if self.values is not None and len(self.values) == 1 else None

    def value_cells(self, n_objectives: int) -> List[Tuple[Optional[float], str]]:
        """Per objective, the value and its text: ``0.81`` or, for a repeated trial, ``0.81 ± 0.004``."""
        cells = []
        for i in range(n_objectives):
            value = self.values[i] if self.values is not None and i < len(self.values) else None
            text = _short(value)
            if value is not None and self.std is not None and i < len(self.std):
                text += f" \u00b1 {self.std[i]:.2g}"
            cells.append((value, text))
        return cells

    def constraint_record(self, constraints: Constraints) -> Dict[str, Any]:
        """This row's :func:`constraint_columns`, blank for a trial that recorded no values (not COMPLETE)."""
        values, violations = self.constraint_values or {}, self.violations or {}
        cells = [self.feasible, *(values.get(key) for key in constraints.keys)]
        cells += [violations.get(text) for text in constraints.texts]
        return {column: _blank(cell) for column, cell in zip(constraint_columns(constraints), cells)}

    def csv_record(self, param_names: Sequence[str], value_fields: Sequence[str] = ("value",),
                   repeated: bool = False, constraints: Constraints = Constraints()) -> Dict[str, Any]:
        record: Dict[str, Any] = {"number": self.number, "state": self.state}
        for i, name in enumerate(value_fields):
            record[name] = _blank(self.values[i] if self.values is not None and i < len(self.values) else None)
            if repeated:
                record[f"{name}_std"] = _blank(self.std[i] if self.std is not None and i < len(self.std) else None)
        record.update(self.constraint_record(constraints))
        record.update({f"params_{name}": _blank(self.params.get(name)) for name in param_names})
        record.update(
            duration_seconds=_blank(self.duration),
            directory=self.directory,
            enqueued_from=self.enqueued_from,
            fail_reason=self.fail_reason,
        )
        if repeated:
            record["runs"] = json.dumps(self.runs) if self.runs else ""
        return record


def trial_row(trial: FrozenTrial, constraints: Constraints = Constraints()) -> TrialRow:
    """The row of one trial; a failed trial's reason is the last line of its traceback.

    Under ``constraints``, a trial that recorded its constrained values has them, its violations
    and whether it is feasible.
    """
    traceback_text = str(trial.user_attrs.get(FAIL_REASON_ATTR, "")).strip()
    if trial.state == TrialState.RUNNING and trial.datetime_start is not None:
        duration: Optional[float] = (datetime.datetime.now() - trial.datetime_start).total_seconds()
    else:
        duration = trial.duration.total_seconds() if trial.duration is not None else None
    return TrialRow(
        number=trial.number,
        state=trial.state.name,
        values=None if trial.values is None else list(trial.values),
        params=dict(trial.params),
        duration=duration,
        directory=str(trial.user_attrs.get(SERIALIZATION_DIR_ATTR, "")),
        enqueued_from=enqueued_from(trial) or "",
        fail_reason=traceback_text.splitlines()[-1] if traceback_text else "",
        fail_traceback=traceback_text,
        std=trial.user_attrs.get(VALUES_STD_ATTR),
        runs=trial.user_attrs.get(RUNS_ATTR),
        feasible=constraints.feasibility(trial),
        constraint_values=constraints.trial_values(trial) if constraints else None,
        violations=constraints.trial_violations(trial),
    )


def read_trials(study: optuna.Study, trials: Optional[Sequence[FrozenTrial]] = None) -> Sequence[FrozenTrial]:
    """``trials`` if the caller has read them already, else the study's trials, by number."""
    return study.get_trials(deepcopy=False) if trials is None else trials


def param_names(rows: Sequence[TrialRow]) -> List[str]:
    """Every parameter name of the rows, in the order trials first sampled them."""
    names: Dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row.params))
    return list(names)


def value_fields(stored: StoredStudy) -> List[str]:
    """The value columns: ``value`` for one objective, ``value_KEY`` for each of several."""
    keys = stored.objectives.keys
    return ["value"] if len(keys) == 1 else [f"value_{key}" for key in keys]


def trials_csv(study: optuna.Study, trials: Optional[Sequence[FrozenTrial]] = None) -> str:
    """The trials table as CSV text: number, state, value, params_*, duration, directory, ...

    A multi-objective study has a ``value_KEY`` column per objective; a repeated study
    (``--seeds``, ``--repeat``) adds each value's ``_std`` and a ``runs`` column (JSON, each run's values);
    a study with ``--constraint`` bounds adds ``feasible`` (``True``/``False``), ``metric_KEY`` per
    constrained key and ``violation_KEY<=NUMBER`` per constraint (see :meth:`TrialRow.constraint_record`).
    """
    stored = StoredStudy.read(study)
    constraints = stored.constraints
    rows = [trial_row(t, constraints) for t in read_trials(study, trials)]
    names = param_names(rows)
    values = value_fields(stored)
    repeated = any(row.runs for row in rows)
    value_columns = [c for v in values for c in ([v, f"{v}_std"] if repeated else [v])]
    buffer = io.StringIO()
    fields = ["number", "state", *value_columns, *constraint_columns(constraints), *(f"params_{n}" for n in names),
              "duration_seconds", "directory", "enqueued_from", "fail_reason", *(["runs"] if repeated else [])]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.csv_record(names, values, repeated, constraints))
    return buffer.getvalue()


def default_report_path(stored: StoredStudy) -> str:
    """Where ``tune-report`` writes without ``-o``: ``report.html`` beside the study's trial directories, where
    ``tune`` keeps it (in the current directory when they are not on this machine)."""
    directory = stored.results_directory()
    return os.path.join(directory if directory and os.path.isdir(directory) else os.getcwd(), REPORT_FILE)


def write_report(
    study: optuna.Study,
    html_path: str,
    csv_path: Optional[str] = None,
    trials: Optional[Sequence[FrozenTrial]] = None,
) -> None:
    """Write the HTML report (and the trials CSV), each replaced atomically.

    Args:
        study: the study to report on; its trials are read once, so the page and the CSV agree.
        html_path: where the page goes.
        csv_path: where the CSV goes; ``None`` writes no CSV.
        trials: the study's trials, if the caller has just read them.
    """
    trials = read_trials(study, trials)
    atomic_write(html_path, render_report(study, trials))
    if csv_path is not None:
        atomic_write(csv_path, trials_csv(study, trials))


def atomic_write(path: str, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


class ReportWriter:
    """An Optuna study callback that keeps ``DIR/report.html`` and ``DIR/trials.csv`` current.

    ``trials.csv`` is rewritten after every trial. Rendering the page (plotly figures, fANOVA)
    takes half a second or more, which matters when trials are short: after a trial the page is
    re-rendered only if rendering, counting one more render for the end of the study, stays
    within ``max_share`` of the time since the study started; so it never costs a study more
    than that share of its wall time. When trials take minutes, that is after every trial.
    :meth:`write` (``tune`` calls it at the end) renders unless the page already shows every
    trial as it is. A report that cannot be written is logged, never allowed to stop the study.

    Args:
        directory: the study's serialization directory.
        max_share: the largest share of the study's wall time spent rendering the page.
    """

    def __init__(self, directory: str, max_share: float = 0.01) -> None:
        self.html_path = os.path.join(directory, REPORT_FILE)
        self.csv_path = os.path.join(directory, TRIALS_FILE)
        self.max_share = max_share
        self.started = time.monotonic()
        self.rendering_seconds = 0.0
        self.last_rendering_seconds = 0.0
        self.rendered: Optional[List[Any]] = None

    def __call__(self, study: optuna.Study, trial: Optional[FrozenTrial] = None) -> None:
        budget = self.max_share * (time.monotonic() - self.started)
        if self.rendering_seconds + self.last_rendering_seconds > budget:
            self._guarded(lambda: atomic_write(self.csv_path, trials_csv(study)))
        else:
            self.write(study)

    def write(self, study: optuna.Study) -> None:
        """Render the page and the CSV now, unless they already show every trial as it is."""
        trials = study.get_trials(deepcopy=False)
        shown = [(t.number, t.state, t.values) for t in trials]
        if shown == self.rendered:
            return
        start = time.monotonic()
        self._guarded(lambda: write_report(study, self.html_path, self.csv_path, trials))
        self.last_rendering_seconds = time.monotonic() - start
        self.rendering_seconds += self.last_rendering_seconds
        self.rendered = shown

    def _guarded(self, write: Any) -> None:
        try:
            write()
        except Exception as error:  # a report must never cost the study its trials
            logger.warning("Could not write the study report %s: %s", self.html_path, error)


# --- The page ---------------------------------------------------------------------------------


@dataclass
class PlotSection:
    """One plot of the page, or the note saying why it is not drawn."""

    anchor: str
    title: str
    caption: str
    figure: Any = None
    note: str = ""


def render_report(study: optuna.Study, trials: Optional[Sequence[FrozenTrial]] = None) -> str:
    """The whole HTML page for ``study`` (or for ``trials`` of it, just read), with plotly.js embedded."""
    trials = read_trials(study, trials)
    stored = StoredStudy.read(study)
    constraints = stored.constraints
    rows = [trial_row(t, constraints) for t in trials]
    live = any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
    with _plot_template(_TEMPLATE):
        sections = plot_sections(stored, trials)
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    refresh = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if live else ""
    status = f"trials are running; this page reloads every {REFRESH_SECONDS} s" if live else "no trial is running"
    contents = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    return _PAGE.format(
        refresh=refresh,
        title=html.escape(f"Study {study.study_name}"),
        updated=html.escape(f"Updated {now}; {status}."),
        summary="".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(stored, trials)),
        contents=contents,
        plotlyjs=_plotlyjs(),
        plots="".join(_plot_html(s) for s in sections),
        table=_table_html(rows, value_fields(stored), constrained=bool(constraints)),
        style=_STYLE,
        script=_SCRIPT,
        error_script=_ERROR_SCRIPT,
    )


@functools.lru_cache(maxsize=1)
def _plotlyjs() -> str:
    """plotly.js (4.8 MB), read from plotly's package once per process."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


@contextmanager
def _plot_template(name: str) -> Iterator[None]:
    """Figures made meanwhile start from plotly's template ``name``: cheaper than applying it
    to each figure afterwards (about 20 ms a figure)."""
    import plotly.io

    default = plotly.io.templates.default
    plotly.io.templates.default = name
    try:
        yield
    finally:
        plotly.io.templates.default = default


def plot_sections(stored: StoredStudy, trials: Optional[Sequence[FrozenTrial]] = None) -> List[PlotSection]:
    """The page's plots, in reading order."""
    from optuna import visualization

    study = stored.study
    trials = read_trials(study, trials)
    if stored.is_multi:
        return multi_objective_sections(stored, trials)
    metric = stored.objectives.metrics
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    constraints = stored.constraints
    feasible = [t for t in complete if constraints.is_feasible(t)]
    baselines = [t for t in complete if enqueued_from(t)]  # e.g. the hand-tuned baseline
    no_trial = "No trial has completed yet."
    sections = [
        PlotSection("history", "Optimization history",
                    "Each completed trial's value and the best so far; stars and dashed lines are enqueued baselines."),
        PlotSection("expected-performance", "Expected validation performance",
                    f"Expected best value of n trials drawn from the {'feasible ' if constraints else ''}completed "
                    "ones, \u00b1 one standard deviation (Dodge et al. 2019, \u201cShow Your Work\u201d)."),
        PlotSection("intermediate-values", "Intermediate values",
                    "Learning curves the trials reported to Optuna, pruned trials included."),
        PlotSection("importances", "Parameter importances", "fANOVA importance of each hyperparameter."),
        PlotSection("parallel-coordinates", "Parallel coordinates", "Each line is a completed trial."),
        PlotSection("slice", "Slice", "The value against each hyperparameter."),
    ]
    history, expected, intermediate, importances, parallel, slices = sections
    if not complete:
        for section in (history, expected, parallel, slices):
            section.note = no_trial
    else:
        history.figure = _with_pruned_points(_with_baseline_points(
            _with_baselines(visualization.plot_optimization_history(study, target_name=metric), baselines), baselines
        ), trials)
        maximize = stored.objectives.directions[0] == "maximize"
        if feasible:
            expected.figure = _with_baselines(
                expected_performance_figure([t.value for t in feasible], maximize, metric), baselines
            )
        else:
            expected.note = "No completed trial satisfies the constraints."
        parallel.figure = visualization.plot_parallel_coordinate(study, target_name=metric)
        slices.figure = _with_decade_ticks(visualization.plot_slice(study, target_name=metric))
    if any(t.intermediate_values for t in trials):
        intermediate.figure = _as_learning_curves(visualization.plot_intermediate_values(study), stored, trials)
    else:
        intermediate.note = ("No trial reported intermediate values; add the optuna_pruner callback to the "
                             "trainer's callbacks to record learning curves and prune.")
    _plot_importances(importances, study, complete, metric)
    return sections


def multi_objective_sections(stored: StoredStudy, trials: Sequence[FrozenTrial]) -> List[PlotSection]:
    """The plots of a multi-objective study: its Pareto front, then history, importances, parallel
    coordinates and slices of each objective (Optuna's plots with ``target`` the objective)."""
    from optuna import visualization

    study = stored.study
    keys = list(stored.objectives.keys)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    constraints = stored.constraints
    caption = "Each completed trial's values; the Pareto front's trials (none beaten on every objective) in red"
    caption += "; trials that violate a constraint in grey, and never on the front." if constraints else "."
    pareto = PlotSection("pareto-front", "Pareto front", caption)
    sections = [pareto]
    # Optuna 4 and 5 read the trials' recorded constraints; Optuna 3's plot needs the function.
    greyed = pareto_front_constraint_arguments(ConstraintViolations(tuple(constraints.texts))) if constraints else {}
    if complete:
        pareto.figure = visualization.plot_pareto_front(study, target_names=keys, **greyed) if len(keys) <= 3 else None
        if pareto.figure is None:
            pareto.note = f"Optuna draws Pareto fronts of 2 or 3 objectives; this study has {len(keys)}."
    else:
        pareto.note = "No trial has completed yet."
    for i, key in enumerate(keys):
        def target(trial: FrozenTrial, i: int = i) -> float:
            return trial.values[i]

        history = PlotSection(f"history-{i}", f"Optimization history: {key}", f"Each completed trial's {key}.")
        importances = PlotSection(f"importances-{i}", f"Parameter importances: {key}",
                                  f"fANOVA importance of each hyperparameter for {key}.")
        parallel = PlotSection(f"parallel-coordinates-{i}", f"Parallel coordinates: {key}", "Each line is a completed trial.")
        slices = PlotSection(f"slice-{i}", f"Slice: {key}", f"{key} against each hyperparameter.")
        if not complete:
            for section in (history, parallel, slices):
                section.note = "No trial has completed yet."
        else:
            history.figure = visualization.plot_optimization_history(study, target=target, target_name=key)
            parallel.figure = visualization.plot_parallel_coordinate(study, target=target, target_name=key)
            slices.figure = visualization.plot_slice(study, target=target, target_name=key)
        _plot_importances(importances, study, complete, key, target)
        sections += [history, importances, parallel, slices]
    return sections


def _plot_importances(section: PlotSection, study: optuna.Study, complete: Sequence[FrozenTrial], metric: str,
                      target: Optional[Any] = None) -> None:
    """fANOVA importances, or why there are none; a caution when they rest on few trials."""
    from optuna import visualization

    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        section.note = (f"Too few trials: fANOVA needs at least {MIN_TRIALS_FOR_IMPORTANCE} completed "
                        f"trials, this study has {len(complete)}.")
        return
    if len({(target or _single_value)(t) for t in complete}) == 1:
        section.note = (f"All {len(complete)} completed trials have the same value, so no hyperparameter "
                        "explains a difference yet.")
        return
    try:
        section.figure = visualization.plot_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), target=target, target_name=metric
        )
    except (ValueError, RuntimeError) as error:
        section.note = f"Importances cannot be computed: {error}"
    if len(complete) < FEW_TRIALS_FOR_IMPORTANCE:
        section.caption += (f" Estimated from only {len(complete)} completed trials: "
                            "too few for more than a rough indication.")


def _single_value(trial: FrozenTrial) -> float:
    return trial.value


def expected_performance_figure(values: Sequence[float], maximize: bool, metric: str) -> Any:
    """Expected best of the completed trials' ``values`` against the number of trials, with a
    one-standard-deviation band."""
    import plotly.graph_objects as go

    curve = expected_best_curve(values, maximize=maximize)
    n = [p.n for p in curve]
    upper = [min(p.mean + p.std, max(values)) for p in curve]
    lower = [max(p.mean - p.std, min(values)) for p in curve]
    figure = go.Figure(
        [
            go.Scatter(x=n + n[::-1], y=upper + lower[::-1], mode="lines", fill="toself", line={"width": 0},
                       fillcolor="rgba(31, 119, 180, 0.18)", hoverinfo="skip", name="\u00b1 1 std"),
            go.Scatter(x=n, y=[p.mean for p in curve], mode="lines+markers", name="Expected best",
                       line={"color": "#1f77b4"}),
        ]
    )
    figure.update_layout(
        title="Expected Validation Performance",
        xaxis={"title": "Number of trials (n)", "tick0": 1, "dtick": max(1, len(curve) // 10)},
        yaxis_title=f"Expected best {metric}",
    )
    return figure


def _with_baselines(figure: Any, baselines: Sequence[FrozenTrial]) -> Any:
    """Draw each completed baseline trial as a dashed horizontal reference line."""
    for trial in baselines:
        figure.add_hline(
            y=trial.value,
            line_dash="dash",
            line_color="#d62728",
            annotation_text=f"baseline: {enqueued_from(trial)}, trial {trial.number} = {trial.value:.6g}",
            annotation_position="bottom right",
            annotation_font_color="#d62728",
        )
    return figure


def _with_baseline_points(figure: Any, baselines: Sequence[FrozenTrial]) -> Any:
    """Mark the baseline trials among the history's points."""
    import plotly.graph_objects as go

    if baselines:
        figure.add_trace(
            go.Scatter(x=[t.number for t in baselines], y=[t.value for t in baselines], mode="markers",
                       name="Enqueued (baseline)", marker={"symbol": "star", "size": 14, "color": "#d62728"})
        )
    return figure


def _with_pruned_points(figure: Any, trials: Sequence[FrozenTrial]) -> Any:
    """Add the pruned trials to the history, at the last value they reported (Optuna draws COMPLETE trials only)."""
    import plotly.graph_objects as go

    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.value is not None]
    if pruned:
        figure.add_trace(
            go.Scatter(x=[t.number for t in pruned], y=[t.value for t in pruned], mode="markers",
                       name="Pruned (last reported value)", marker={"symbol": "x", "size": 9, "color": "#8c959f"})
        )
    return figure


def _as_learning_curves(figure: Any, stored: StoredStudy, trials: Sequence[FrozenTrial]) -> Any:
    """Optuna's intermediate-values plot as learning curves: the epoch (from 1) along x, the reported metric up,
    a legend naming each trial and its state, pruned trials dashed.

    A repeated trial (``--seeds``, ``--repeat``) reports run k's epoch e at step ``k * epochs + e``: its x stays the step.
    """
    from allennlp_optuna.study.objectives import monitored_metric

    states = {f"Trial{t.number}": t.state.name for t in trials}
    epochs = not stored.repeats.active
    for trace in figure.data:
        state = states.get(trace.name, "")
        if epochs and trace.x is not None:
            trace.x = [x + 1 for x in trace.x]
        trace.update(name=f"{trace.name.replace('Trial', 'trial ')} ({state})", showlegend=True,
                     line={"dash": "dash" if state == "PRUNED" else "solid"})
    figure.update_layout(showlegend=True, legend_title_text="Trial", title_text="Learning curves")
    figure.update_xaxes(title_text="Epoch" if epochs else "Step (run × epochs + epoch, from 0)", dtick=1)
    figure.update_yaxes(title_text=monitored_metric(stored.objectives.keys[0]))
    return figure


def _with_decade_ticks(figure: Any) -> Any:
    """Two ticks per power of ten on the slice plot's log axes (a learning rate's), as 1e-3 and 3e-3, so that labels do not overlap."""
    figure.for_each_xaxis(lambda axis: axis.update(dtick=0.5, tickformat=".0e") if axis.type == "log" else None)
    return figure


def _plot_html(section: PlotSection) -> str:
    if section.figure is None:
        body = f'<p class="note">{html.escape(section.note)}</p>'
    else:
        # Optuna sizes some plots (slices) to a fixed width; let every plot fit the page instead.
        section.figure.update_layout(height=_PLOT_HEIGHT, width=None, autosize=True, margin={"t": 60, "b": 50})
        body = section.figure.to_html(
            full_html=False, include_plotlyjs=False, div_id=f"plot-{section.anchor}", default_width="100%"
        )
    return (
        f'<section class="card" id="{section.anchor}"><h2>{html.escape(section.title)}</h2>'
        f'<p class="caption">{html.escape(section.caption)}</p>{body}</section>'
    )


def _table_html(rows: Sequence[TrialRow], values: Sequence[str] = ("value",), constrained: bool = False) -> str:
    names = param_names(rows)
    value_headers = ["Value"] if len(values) == 1 else [v[len("value_"):] for v in values]
    if any(row.runs for row in rows):
        value_headers = [f"{h} (mean \u00b1 std)" for h in value_headers]
    headers = ["#", "State", *value_headers, *(["Feasible"] if constrained else []), *names, "Duration", "Directory",
               "Failure reason"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(_row_html(row, names, len(values), constrained) for row in rows)
    return f'<table class="trials" id="trials"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _feasible_cell(row: TrialRow) -> str:
    """``yes`` or ``no`` (its title: each constraint's violation), empty for a trial without constraint values."""
    if row.feasible is None:
        return _cell(None, "")
    title = "; ".join(f"{text}: violation {violation:.6g}" for text, violation in (row.violations or {}).items())
    text = "yes" if row.feasible else "no"
    return _cell(text, f'<span class="feasible {text}" title="{html.escape(title)}">{text}</span>', raw=True)


def _row_html(row: TrialRow, names: Sequence[str], n_objectives: int = 1, constrained: bool = False) -> str:
    number = str(row.number)
    if row.enqueued_from:
        number += f' <span class="tag" title="values enqueued from {html.escape(row.enqueued_from)}">enqueued</span>'
    if row.feasible is False:
        number += ' <span class="tag infeasible-tag" title="violates a --constraint">infeasible</span>'
    reason = ""
    if row.fail_reason:
        reason = (f"<details><summary>{html.escape(row.fail_reason)}</summary>"
                  f"<pre>{html.escape(row.fail_traceback)}</pre></details>")
    duration = "" if row.duration is None else format_seconds(row.duration)
    cells = [
        _cell(row.number, number, raw=True),
        _cell(row.state, f'<span class="state {row.state.lower()}">{row.state}</span>', raw=True),
        *(_cell(value, text) for value, text in row.value_cells(n_objectives)),
        *([_feasible_cell(row)] if constrained else []),
        *(_cell(row.params.get(n), _short(row.params.get(n))) for n in names),
        _cell(row.duration, duration),
        _cell(row.directory, f'<code title="{html.escape(row.directory)}">{html.escape(os.path.basename(row.directory))}</code>',
              raw=True),
        _cell(row.fail_reason, reason, raw=True),
    ]
    marks = (("enqueued", bool(row.enqueued_from)), ("infeasible", row.feasible is False))
    classes = [name for name, on in marks if on]
    marked = f' class="{" ".join(classes)}"' if classes else ""
    return f"<tr{marked}>{''.join(cells)}</tr>"


def _cell(sort_value: Any, text: str, raw: bool = False) -> str:
    key = "" if sort_value is None else str(sort_value)
    return f'<td data-sort="{html.escape(key)}">{text if raw else html.escape(text)}</td>'


def _short(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _blank(value: Any) -> Any:
    return "" if value is None else value


_ERROR_SCRIPT = """
window.reportErrors = [];
function reportError(message) {
  window.reportErrors.push(message);
  var box = document.getElementById('js-errors');
  if (box) { box.hidden = false; box.textContent += message + '\\n'; }
}
window.addEventListener('error', function (e) { reportError('JavaScript error: ' + e.message + ' (' + e.filename + ':' + e.lineno + ')'); });
window.addEventListener('unhandledrejection', function (e) { reportError('JavaScript error: ' + e.reason); });
"""

_SCRIPT = """
(function () {
  var table = document.getElementById('trials');
  var headers = table.tHead.rows[0].cells;
  function compare(x, y) {
    if (x === y) { return 0; }
    if (x === '') { return 1; }
    if (y === '') { return -1; }
    var nx = Number(x), ny = Number(y);
    if (!isNaN(nx) && !isNaN(ny)) { return nx - ny; }
    return x.localeCompare(y);
  }
  function sortBy(column, ascending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[column].getAttribute('data-sort'), y = b.cells[column].getAttribute('data-sort');
      if (x === '' || y === '') { return compare(x, y); }
      return ascending ? compare(x, y) : compare(y, x);
    });
    rows.forEach(function (row) { body.appendChild(row); });
    for (var i = 0; i < headers.length; i++) { headers[i].removeAttribute('data-order'); }
    headers[column].setAttribute('data-order', ascending ? 'asc' : 'desc');
    try { sessionStorage.setItem('trials-sort', JSON.stringify([column, ascending])); } catch (e) {}
  }
  for (var i = 0; i < headers.length; i++) {
    (function (column) {
      headers[column].addEventListener('click', function () {
        sortBy(column, headers[column].getAttribute('data-order') !== 'asc');
      });
    })(i);
  }
  var saved = null;
  try { saved = JSON.parse(sessionStorage.getItem('trials-sort')); } catch (e) {}
  if (saved && saved[0] < headers.length) { sortBy(saved[0], saved[1]); }
})();
"""

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       background: #f4f5f7; margin: 0; }
header { background: #24292f; color: #fff; padding: 18px 32px; }
header h1 { margin: 0; font-size: 22px; font-weight: 600; }
header p { margin: 4px 0 0; color: #c9d1d9; }
nav { padding: 8px 32px; background: #fff; border-bottom: 1px solid #d0d7de; }
nav a { margin-right: 16px; color: #0969da; text-decoration: none; }
main { max-width: 1280px; margin: 0 auto; padding: 16px 32px 48px; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 12px 20px 16px;
        margin: 16px 0; }
.card h2 { font-size: 17px; margin: 4px 0; }
.caption { color: #57606a; margin: 0 0 8px; }
.note { background: #fff8c5; border: 1px solid #d4a72c66; border-radius: 6px; padding: 10px 14px; }
ul.summary { margin: 4px 0; padding-left: 20px; font-family: ui-monospace, Menlo, Consolas, monospace; }
#js-errors { background: #ffebe9; border: 1px solid #ff818266; color: #82071e; padding: 10px 14px;
             white-space: pre-wrap; }
.table-wrap { overflow-x: auto; }
table.trials { border-collapse: collapse; width: 100%; font-size: 13px; }
table.trials th { position: sticky; top: 0; background: #f6f8fa; cursor: pointer; user-select: none;
                  text-align: left; padding: 6px 10px; border-bottom: 2px solid #d0d7de; white-space: nowrap; }
table.trials th[data-order="asc"]::after { content: " \\25B2"; }
table.trials th[data-order="desc"]::after { content: " \\25BC"; }
table.trials td { padding: 5px 10px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
table.trials tr.enqueued td { background: #fff5f5; }
table.trials tr.infeasible td { color: #8c959f; }
.tag.infeasible-tag { background: #8c959f; }
.feasible.no { color: #82071e; font-weight: 600; }
table.trials code { font-size: 12px; color: #57606a; }
table.trials details pre { max-width: 640px; overflow-x: auto; font-size: 11px; }
.tag { background: #d62728; color: #fff; border-radius: 10px; padding: 0 7px; font-size: 11px; }
.state { border-radius: 10px; padding: 1px 8px; font-size: 12px; background: #eaeef2; }
.state.complete { background: #dafbe1; color: #116329; }
.state.pruned { background: #fff1e5; color: #953800; }
.state.fail { background: #ffebe9; color: #82071e; }
.state.running { background: #ddf4ff; color: #0969da; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{refresh}
<title>{title}</title>
<style>{style}</style>
<script>{error_script}</script>
</head>
<body>
<header><h1>{title}</h1><p>{updated}</p></header>
<nav><a href="#summary">Summary</a>{contents}<a href="#trials-table">Trials</a></nav>
<main>
<pre id="js-errors" hidden></pre>
<section class="card" id="summary"><h2>Summary</h2><ul class="summary">{summary}</ul></section>
<script>{plotlyjs}</script>
{plots}
<section class="card" id="trials-table"><h2>Trials</h2>
<p class="caption">Click a column to sort. Trials marked enqueued ran with the values of an --enqueue-trial file;
trials marked infeasible (greyed) violate a --constraint and are never the best.</p>
<div class="table-wrap">{table}</div></section>
</main>
<script>{script}</script>
</body>
</html>
"""
