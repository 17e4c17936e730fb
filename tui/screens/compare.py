"""Compare view: the runs marked on the Runs screen, one metric overlaid, each run told apart by its marker.

Beside each run's marker in the legend: its state, its overtraining verdict and its recommended
checkpoint (the same `LiveAnalysis` the Monitor uses). The chart keys are the Monitor's
(zoom, pan, follow, cursor, log y, outliers, x axis); `/` picks the metric. Following live
runs costs what the Monitor's follower costs per run; the chart is rebuilt at most every
CHART_INTERVAL_S on new records and at once on a key.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from trainer.rundir import RunDir
from trainer.rundir.source import RunSource, as_source
from tui.follow import RunFollower
from tui.run_analysis import LiveAnalysis
from tui.screens.monitor_data import CHART_INTERVAL_S, DEFAULT_SMOOTHING, smoothing_step, verdict_text
from tui.series import IncrementalEma, Series
from tui.states import state_word
from tui.widgets.chart_keys import CHART_BINDINGS, ChartKeys
from tui.widgets.chart_model import (DENSE_KINDS, LABEL_ROOM, ChartSpec, ChartWindow, PlotSeries, XCache,
                                     build_chart, legend_marker, metric_kind, plot_series, x_label)
from tui.widgets.line_chart import ChartLine, LineChart, value_label
from tui.workers import ReportsWorkerFailures
from tui.plain import plain

#: One marker per run, in the order the runs were marked: the chart reads without colour.
RUN_MARKERS = ("•", "+", "x", "*", "o", "#", "%", "@")
RUN_STYLES = ("cyan", "yellow", "green", "magenta", "red", "blue", "bright_white", "white")
DEFAULT_METRIC = "train/loss"


@dataclass
class RunLegend:
    """One run's line of the legend."""

    marker: str
    name: str
    state: str
    step: int
    verdict: str
    recommended: int | None
    reason: str | None
    at_cursor: str = ""

    def text(self) -> str:
        recommended = (f"recommended: step {self.recommended}" + (f" ({self.reason})" if self.reason else "")
                       if self.recommended is not None else "recommended: none yet")
        line = (f"{legend_marker(self.marker)} {self.name} · {state_word(self.state)} · step {self.step} · "
                f"verdict: {self.verdict} · {recommended}")
        return line + (f" · {self.at_cursor}" if self.at_cursor else "")


@dataclass
class CompareView:
    """What the compare view draws at one moment."""

    chart: ChartSpec
    legend: list[RunLegend]
    metric_names: list[str]
    cursor_text: str = ""
    extent: tuple[float, float] | None = None
    reading: list[str] = field(default_factory=list)
    """Runs still being read for the first time."""


class CompareUpdated(Message):
    """A new CompareView (posted by the follow worker)."""

    def __init__(self, view: CompareView) -> None:
        super().__init__()
        self.view = view


class ComparedRun:
    """One run of the comparison: its follower, analysis, checkpoints and smoothing."""

    def __init__(self, run: RunDir | RunSource, marker: str, style: str):
        self.run, self.marker, self.style = as_source(run), marker, style
        """The run's source: voxtop's run directory or another trainer's folder."""
        self.follower = RunFollower(self.run)
        self.analysis: LiveAnalysis | None = None
        self.smoothers: dict[str, IncrementalEma] = {}
        self.x = XCache()
        self.checkpoint_steps: list[int] = []
        self._folder: tuple[int, int] | None = None
        self._judged: tuple[Any, ...] | None = None

    def poll(self, metric: str, x_axis: str) -> bool:
        """Read what is new (the metric's field, and times on a time axis); True when anything changed."""
        wanted = {metric} | ({f"{metric_kind(metric)}/t", "train/t"} if x_axis != "step" else set())
        self.follower.want(wanted)
        changed = self.follower.poll()
        if self.analysis is None:  # another trainer's run brings its own (trainer.foreign), as in the Monitor
            live = getattr(self.run, "live_analysis", None)
            self.analysis = live() if live is not None else LiveAnalysis(self.run.detector_config())
        folder_path = self.run.checkpoints_dir
        try:
            stat = folder_path.stat() if folder_path is not None else None
            folder = (stat.st_mtime_ns, stat.st_ino) if stat is not None else None
        except FileNotFoundError:
            folder = None
        if folder != self._folder or folder is None:  # no folder to watch: listed on each poll
            self._folder = folder
            steps = [c.step for c in self.run.checkpoints()]
            if steps != self.checkpoint_steps:
                self.checkpoint_steps, changed = steps, True
        history = self.follower.history
        judged = (id(history), history.val_loss.count, history.val_loss.version, len(history.checkpoint_records),
                  tuple(self.checkpoint_steps), history.health_version)
        if judged != self._judged:
            self._judged = judged
            self.analysis.update(history.train_loss, history.val_loss, history.val_attention,
                                 history.checkpoint_records, set(self.checkpoint_steps), history.health)
            changed = True
        return changed

    def origin(self) -> float | None:
        history = self.follower.history
        firsts = [float(s.values[0]) for s in (history.metrics.get("train/t"), history.metrics.get("val/t"))
                  if s is not None and s.count]
        return min(firsts) if firsts else None

    def plot(self, metric: str, window: ChartWindow, smoothing: float) -> PlotSeries:
        history = self.follower.history
        kind = metric_kind(metric)
        data = history.metrics.get(metric) or Series(1)
        x = self.x.x_of(data, window.x_axis, history.metrics.get(f"{kind}/t"), self.origin())
        smoother = self.smoothers.setdefault(metric, IncrementalEma())
        return plot_series(self.run.name, data, x, kind in DENSE_KINDS, self.marker, smoothing, smoother, self.style)

    def legend(self) -> RunLegend:
        history, status = self.follower.history, self.follower.status or {}
        result = self.analysis.result if self.analysis is not None else {}
        last_train = history.last_train or {}
        step = int(max(float(status.get("step") or 0), float(last_train.get("step") or 0)))
        return RunLegend(self.marker, self.run.name, self.follower.state, step, verdict_text(result, history.events),
                         result.get("recommended"), result.get("recommended_reason"))

    def nearest_checkpoint(self, step: float) -> int | None:
        if not self.checkpoint_steps:
            return None
        steps = np.asarray(self.checkpoint_steps, dtype=np.float64)
        return int(steps[int(np.argmin(np.abs(steps - step)))])


class CompareModel:
    """Follows the compared runs and builds views for a chart width, metric, smoothing and window."""

    def __init__(self, runs: Sequence[RunDir | RunSource], clock: Any = time.monotonic):
        self.runs = [ComparedRun(run, RUN_MARKERS[i % len(RUN_MARKERS)], RUN_STYLES[i % len(RUN_STYLES)])
                     for i, run in enumerate(runs)]
        self._clock = clock
        self._lock = threading.Lock()
        self._params: tuple[Any, ...] | None = None
        self._view: CompareView | None = None
        self._built_at = -float("inf")

    def update(self, width: int, metric: str, smoothing: float, window: ChartWindow,
               force: bool = False) -> CompareView | None:
        """A new view when anything changed (None if not): at once for new settings, else at most every
        CHART_INTERVAL_S."""
        with self._lock:
            changed = False
            for run in self.runs:
                changed = run.poll(metric, window.x_axis) or changed
            params = (width, metric, smoothing, window)
            now = self._clock()
            if params == self._params and not force and (not changed or now - self._built_at < CHART_INTERVAL_S):
                return None
            self._params, self._built_at = params, now
            self._view = self._build(width, metric, smoothing, window)
            return self._view

    def _build(self, width: int, metric: str, smoothing: float, window: ChartWindow) -> CompareView:
        plotted = [run.plot(metric, window, smoothing) for run in self.runs]
        dense = metric_kind(metric) in DENSE_KINDS
        title = f"{metric}" + (f" · ema {smoothing:g} [ ]" if dense else "") + " · " + ", ".join(
            f"{legend_marker(run.marker)} {run.run.name}" for run in self.runs)
        # relative time: each run from its own first record (XCache measures it so), so their curves line up
        chart = build_chart(plotted, window, width, title, raw_dots=False)
        legend = [run.legend() for run in self.runs]
        cursor_text = ""
        if chart.cursor is not None:
            for entry, item, run in zip(legend, plotted, self.runs):
                entry.at_cursor = _at_cursor(item, chart.cursor, run)
            cursor_text = f"cursor {x_label(window.x_axis, chart.cursor)} ({metric})"
        names = sorted({name for run in self.runs for name in run.follower.history.metric_names()})
        reading = [run.run.name for run in self.runs if not run.follower.history.records]
        return CompareView(chart, legend, names, cursor_text, chart.extent, reading)


def _at_cursor(item: PlotSeries, at: float, run: ComparedRun) -> str:
    """A run's raw (and smoothed) value at the point nearest the cursor and its nearest checkpoint."""
    from tui.series import nearest_index

    index = nearest_index(item.x, at)
    if index is None:
        return "no point here"
    step = float(item.steps[index])
    text = f"at step {int(step)}: {value_label(float(item.values[index]))}"
    if item.smoothed is not None:
        text += f" ~{value_label(float(item.smoothed[index]))}"
    nearest = run.nearest_checkpoint(step)
    if nearest is not None:
        text += f" · nearest checkpoint {nearest}"
    return text


class CompareScreen(ChartKeys, ReportsWorkerFailures, Screen[None]):
    """Several runs on one chart: `/` picks the metric, the chart keys move through it."""

    DEFAULT_CSS = """
    #compare-chart { height: 1fr; border-top: solid $secondary; border-title-align: left; }
    #compare-legend { height: auto; max-height: 10; padding: 0 1; border-top: solid $secondary; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("slash", "pick_metric", "Metric"),
        Binding("left_square_bracket", "smoothing(-1)", "Smooth-", show=False),
        Binding("right_square_bracket", "smoothing(1)", "Smooth+", show=False),
        Binding("c", "chart_cursor_toggle", "Cursor"),
        Binding("x", "chart_axis", "X axis"),
        Binding("l", "chart_log", "Log y"),
        Binding("q", "app.quit", "Quit"),
        *CHART_BINDINGS,
    ]

    def __init__(self, runs: Sequence[RunDir | RunSource], metric: str = DEFAULT_METRIC):
        super().__init__()
        self.compared = list(runs)
        self.model = CompareModel(self.compared)
        self.metric = metric
        self.smoothing = DEFAULT_SMOOTHING
        self.chart_window = ChartWindow()
        self.view: CompareView | None = None
        self.updates = 0
        """How many views were drawn (tests and the bench use it)."""

    def compose(self) -> ComposeResult:
        names = ", ".join(run.name for run in self.compared)
        yield Static(plain(f"voxtop · compare · {names}"), id="compare-title", classes="title")
        yield LineChart(self.metric, "reading…", id="compare-chart")
        yield Static("", id="compare-legend", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#compare-chart").can_focus = True
        self.refresh_view()
        self.set_interval(self.app.refresh_s, self.refresh_view)

    def refresh_view(self, force: bool = False) -> None:
        """Poll the runs in a worker; the width is read here, on the UI thread."""
        width = self.query_one("#compare-chart").content_size.width
        self._follow(width, self.metric, self.smoothing, self.chart_window, force)

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False, description="reading the compared runs")
    def _follow(self, width: int, metric: str, smoothing: float, window: ChartWindow, force: bool) -> None:
        view = self.model.update(width, metric, smoothing, window, force)
        if view is not None:
            self.post_message(CompareUpdated(view))

    @on(CompareUpdated)
    def _show(self, message: CompareUpdated) -> None:
        view = self.view = message.view
        self.updates += 1
        spec = view.chart
        self.query_one("#compare-chart", LineChart).show(
            spec.lines, spec.y_limits, spec.title, spec.vlines, x_limits=spec.x_limits, x_ticks=spec.x_ticks,
            y_ticks=spec.y_ticks, cursor=spec.cursor)
        lines = [entry.text() for entry in view.legend]
        if view.cursor_text:
            lines.insert(0, view.cursor_text)
        if view.reading:
            lines.append("reading: " + ", ".join(view.reading))
        lines.append(f"/ metric · ←→ cursor · + - zoom · < > pan · f follow · x axis · l log · {self.chart_window.describe()}")
        self.query_one("#compare-legend", Static).update(plain("\n".join(lines), keep_newlines=True))

    def on_resize(self) -> None:
        self.call_after_refresh(self.refresh_view)

    # --- ChartKeys ------------------------------------------------------------------

    def chart_extent(self) -> tuple[float, float] | None:
        return self.view.extent if self.view is not None else None

    def plot_columns(self) -> int:
        return max(1, self.query_one("#compare-chart", LineChart).content_size.width - LABEL_ROOM)

    def chart_window_changed(self) -> None:
        self.refresh_view()

    # --- keys -----------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_smoothing(self, direction: int) -> None:
        self.smoothing = smoothing_step(self.smoothing, direction)
        self.refresh_view()

    def action_pick_metric(self) -> None:
        from tui.screens.metric_picker import MetricPicker

        names = self.view.metric_names if self.view is not None else []
        self.app.push_screen(MetricPicker("compare: one metric for every run", names, (self.metric,),
                                          (DEFAULT_METRIC,), single=True), self._metric_chosen)

    def _metric_chosen(self, chosen: tuple[str, ...] | None) -> None:
        if chosen:
            self.metric = chosen[0]
            self.query_one("#compare-chart", LineChart).title = self.metric
            self.refresh_view()


__all__ = ["ChartLine", "CompareModel", "CompareScreen", "CompareView", "RUN_MARKERS"]
