"""What a chart shows, decided off the UI thread: the x window (zoom, pan, follow, cursor), the
metrics on it, their downsampling, y-range and axis labels, and the cursor readout.

Everything here is numpy over series already in memory: a zoom on a run of a million records
costs two binary searches per series and one pass over the points in view.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from tui.series import IncrementalEma, Series, column_extremes, nearest_index, view_range
from tui.widgets.line_chart import ChartLine, step_label, step_ticks, value_label

X_AXES = ("step", "relative", "wall")
X_AXIS_NAMES = {"step": "step", "relative": "relative time", "wall": "wall time"}
#: Markers of the dense series (train records: a line) and the sparse ones (val records: points), in order.
DENSE_MARKERS = ("braille", "+", "x", "*", "o", "#")
SPARSE_MARKERS = ("•", "◦", "×", "□", "△", "◇")
RAW_MARKER = "·"  # a raw point at a column's extreme, under a smoothed line
#: Records of these kinds are dense: one per logged step, drawn as a line (others as points).
DENSE_KINDS = ("train",)
FIELD_TITLES = {"attention_score": "attention sharpness, not alignment"}
MIN_ZOOM_COLUMNS = 4  # the narrowest view spans this many x units (steps or seconds)
LABEL_ROOM = 7  # columns a chart gives its y labels, as the downsampling assumes
_TIME_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
                 172800, 604800)


@dataclass(frozen=True)
class ChartWindow:
    """The x view a screen's charts share: zoom and pan, follow latest, cursor, log y, outliers.

    While `follow` is on, the view ends at the newest point and keeps its width (`width`, None:
    the whole run); a pan leaves it with a fixed `span`.
    """

    x_axis: str = "step"
    follow: bool = True
    width: float | None = None
    span: tuple[float, float] | None = None
    cursor: float | None = None
    log_y: bool = False
    outliers: bool = False

    def visible(self, extent: tuple[float, float]) -> tuple[float, float]:
        """The x range in view, for data spanning `extent`."""
        low, high = extent
        if self.follow or self.span is None:
            if self.width is None or self.width >= high - low:
                return low, high
            return high - self.width, high
        return self.span

    def zoomed(self, factor: float, extent: tuple[float, float], at: float | None = None) -> ChartWindow:
        """Zoom by `factor` (<1: in) around `at`, else the cursor, else the newest point while following,
        else the middle of the view; zooming out to the whole run returns to following it."""
        low, high = self.visible(extent)
        full = extent[1] - extent[0]
        width = max(min(full, (high - low) * factor), MIN_ZOOM_COLUMNS)
        if width >= full:
            return replace(self, follow=True, width=None, span=None)
        anchor = at if at is not None else self.cursor
        if anchor is None and self.follow:
            return replace(self, width=width)
        if anchor is None:
            anchor = (low + high) / 2
        share = (anchor - low) / (high - low) if high > low else 0.5
        new_low = anchor - share * width
        new_low = min(max(new_low, extent[0]), extent[1] - width)
        if self.follow and new_low + width >= extent[1]:
            return replace(self, width=width)
        return replace(self, follow=False, width=width, span=(new_low, new_low + width))

    def panned(self, fraction: float, extent: tuple[float, float]) -> ChartWindow:
        """Move the view by `fraction` of its width (left: negative); leaves follow mode."""
        low, high = self.visible(extent)
        width = high - low
        new_low = min(max(low + fraction * width, extent[0]), max(extent[0], extent[1] - width))
        return replace(self, follow=False, width=width, span=(new_low, new_low + width))

    def at_start(self, extent: tuple[float, float]) -> ChartWindow:
        """The view moved to the first point, same width (home)."""
        low, high = self.visible(extent)
        return replace(self, follow=False, width=high - low, span=(extent[0], extent[0] + high - low))

    def following(self) -> ChartWindow:
        """Back to following the newest point (end), same width."""
        return replace(self, follow=True, span=None)

    def whole(self) -> ChartWindow:
        return replace(self, follow=True, width=None, span=None)

    def cursor_moved(self, columns: int, extent: tuple[float, float], plot_columns: int) -> ChartWindow:
        """The cursor moved by `columns` chart columns (shown at the newest point in view first); the
        view pans when it leaves it."""
        low, high = self.visible(extent)
        if self.cursor is None or not low <= self.cursor <= high:
            return replace(self, cursor=high)
        step = (high - low) / max(plot_columns, 1)
        cursor = min(max(self.cursor + columns * step, extent[0]), extent[1])
        moved = replace(self, cursor=cursor)
        if cursor < low:
            return replace(moved, follow=False, width=high - low, span=(cursor, cursor + high - low))
        if cursor > high:
            return replace(moved, follow=False, width=high - low, span=(cursor - (high - low), cursor))
        return moved

    def with_axis(self, x_axis: str) -> ChartWindow:
        """Another x axis: the view and cursor start over (their units changed)."""
        return replace(self, x_axis=x_axis, follow=True, width=None, span=None, cursor=None)

    def next_axis(self) -> ChartWindow:
        return self.with_axis(X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)])

    def title_suffix(self) -> str:
        """What a chart title adds for a view other than the default: log y, time axis, outliers, not following."""
        parts = []
        if self.log_y:
            parts.append("log y")
        if self.x_axis != "step":
            parts.append(f"x: {X_AXIS_NAMES[self.x_axis]}")
        if self.outliers:
            parts.append("outliers in")
        if not self.follow:
            parts.append("f: follow")
        return "".join(f" · {p}" for p in parts)

    def describe(self) -> str:
        """A few words on the view: axis, follow or fixed, log scale, outliers."""
        parts = [f"x: {X_AXIS_NAMES[self.x_axis]}", "following" if self.follow else "f: follow"]
        if self.log_y:
            parts.append("log y")
        if self.outliers:
            parts.append("outliers in")
        return " · ".join(parts)


@dataclass
class PlotSeries:
    """One metric of one run on a chart: its x positions, raw values and (dense ones) smoothing."""

    label: str
    x: np.ndarray
    steps: np.ndarray
    values: np.ndarray
    dense: bool
    marker: str
    smoothed: np.ndarray | None = None
    style: str = ""


@dataclass
class ChartSpec:
    """The lines of one chart, already smoothed and downsampled, with its axes and cursor readout."""

    lines: list[ChartLine]
    y_limits: tuple[float, float] | None
    title: str
    vlines: list[float] = field(default_factory=list)
    x_limits: tuple[float, float] | None = None
    x_ticks: tuple[list[float], list[str]] | None = None
    y_ticks: tuple[list[float], list[str]] | None = None
    cursor: float | None = None
    readout: list[str] = field(default_factory=list)
    """Per series at the cursor: `label raw ~smoothed` (raw alone without smoothing)."""
    cursor_step: float | None = None
    """The step of the point nearest the cursor (on a time axis too)."""
    extent: tuple[float, float] | None = None
    """The x range of all the data (what home, end and zoom-out reach)."""


def metric_kind(metric: str) -> str:
    return metric.split("/", 1)[0]


def metric_field(metric: str) -> str:
    return metric.split("/", 1)[-1]


def legend_marker(marker: str) -> str:
    return "⠤⠤" if marker == "braille" else marker * 2


def chart_title(metrics: Sequence[str], markers: Sequence[str], smoothing: float) -> str:
    """`loss · train ⠤⠤ ema 0.6 [ ], val ••` when the metrics share a field, else each named."""
    fields = {metric_field(m) for m in metrics}
    dense = any(metric_kind(m) in DENSE_KINDS for m in metrics)
    if len(fields) == 1 and len(metrics) > 0:
        name = next(iter(fields))
        parts = [f"{metric_kind(m)} {legend_marker(k)}" + (f" ema {smoothing:g} [ ]" if metric_kind(m) in DENSE_KINDS
                                                               else "") for m, k in zip(metrics, markers)]
        return f"{FIELD_TITLES.get(name, name)} · " + ", ".join(parts)
    named = ", ".join(f"{m} {legend_marker(k)}" for m, k in zip(metrics, markers))
    return named + (f" · ema {smoothing:g} [ ]" if dense else "")


def assign_markers(metrics: Sequence[str]) -> list[str]:
    """Each metric's marker: dense ones braille first, then +, x...; sparse ones •, ◦, ×..."""
    dense = iter(DENSE_MARKERS * 4)
    sparse = iter(SPARSE_MARKERS * 4)
    return [next(dense) if metric_kind(m) in DENSE_KINDS else next(sparse) for m in metrics]


def _log(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)


def _finite(x: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(values)
    return (x, values) if keep.all() else (x[keep], values[keep])


def build_chart(series: Sequence[PlotSeries], window: ChartWindow, width: int, title: str,
                start_time: float | None = None, raw_dots: bool = True) -> ChartSpec:
    """The lines of `series` in the window's view, each column's raw extremes kept, y fitted to the view.

    `width` is the chart's width in cells; `start_time` the run's first record time (relative axis).
    """
    present = [s for s in series if len(s.x)]
    if not present:
        return ChartSpec([], None, title)
    extent = (min(float(s.x[0]) for s in present), max(float(s.x[-1]) for s in present))
    low, high = window.visible(extent)
    if high <= low:
        low, high = low - 1, high + 1
    columns = max(8, width - LABEL_ROOM)  # one per terminal column: its raw minimum and maximum
    lines: list[ChartLine] = []
    dots: list[ChartLine] = []
    in_view: list[np.ndarray] = []
    points: list[np.ndarray] = []
    for item in present:
        first = int(np.searchsorted(item.x, low, "left"))
        last = int(np.searchsorted(item.x, high, "right"))
        edge_first, edge_last = max(0, first - 1), min(len(item.x), last + 1)
        x = item.x[edge_first:edge_last]
        raw = item.values[edge_first:edge_last]
        shown = item.smoothed[edge_first:edge_last] if item.smoothed is not None else raw
        if window.log_y:
            raw, shown = _log(raw), _log(shown)
        raw_x, raw = _finite(x, raw)
        shown_x, shown = _finite(x, shown)
        view_slice = slice(first - edge_first, last - edge_first)
        if item.dense:
            in_view.append(raw[(raw_x >= low) & (raw_x <= high)] if window.log_y else item.values[first:last])
            line_x, line_y = column_extremes(shown_x, shown, low, high, columns)
            lines.append(ChartLine(item.label, line_x, line_y, item.marker, True, item.style))
            if item.smoothed is not None:
                in_view.append(shown[view_slice] if not window.log_y else shown[(shown_x >= low) & (shown_x <= high)])
                if raw_dots:
                    dot_x, dot_y = column_extremes(raw_x, raw, low, high, columns)
                    dots.append(ChartLine(f"{item.label} raw", dot_x, dot_y, RAW_MARKER, False, "dim", under=True))
        else:
            keep = (raw_x >= low) & (raw_x <= high)
            lines.append(ChartLine(item.label, raw_x[keep], raw[keep], item.marker, False, item.style))
            points.append(raw[keep])  # a few evaluations: every one stays inside the plot
    lines.sort(key=lambda line: line.connect is False)  # lines first, then points (val), then raw points
    lines += dots
    limits = view_range(in_view, window.outliers)
    every_point = np.concatenate(points) if points else np.empty(0)
    if len(every_point):
        low_point, high_point = float(every_point.min()), float(every_point.max())
        if limits is None:
            limits = view_range([every_point], True)
        else:
            pad = 0.05 * (max(limits[1], high_point) - min(limits[0], low_point))
            limits = (min(limits[0], low_point - pad), max(limits[1], high_point + pad))
    y_ticks = _log_ticks(limits) if window.log_y and limits is not None else None
    x_ticks = axis_ticks(window.x_axis, low, high, max(3, min(6, width // 12)), start_time)
    title += window.title_suffix()
    spec = ChartSpec(lines, limits, title, [], (low, high), x_ticks, y_ticks, None, [], None, extent)
    if window.cursor is not None and low <= window.cursor <= high:
        spec.cursor = window.cursor
        spec.readout, spec.cursor_step = readout(present, window.cursor)
    return spec


def readout(series: Sequence[PlotSeries], at: float) -> tuple[list[str], float | None]:
    """Each series' raw value (and smoothed, where smoothed) at the point nearest x = `at`."""
    parts, cursor_step = [], None
    for item in series:
        index = nearest_index(item.x, at)
        if index is None:
            continue
        if cursor_step is None:
            cursor_step = float(item.steps[index])
        text = f"{item.label} {legend_marker(item.marker)} {value_label(float(item.values[index]))}"
        if item.smoothed is not None:
            text += f" ~{value_label(float(item.smoothed[index]))}"
        if not item.dense:  # a point at its own step, maybe a way from the cursor
            text += f" @{step_label(int(item.steps[index]))}"
        parts.append(text)
    return parts, cursor_step


def _log_ticks(limits: tuple[float, float]) -> tuple[list[float], list[str]]:
    """Ticks of a log10 axis at whole powers of ten (and 2x, 5x on a narrow range), labelled in values."""
    low, high = limits
    ticks: list[float] = []
    for power in range(math.floor(low), math.ceil(high) + 1):
        for mantissa in ((1,) if high - low > 2 else (1, 2, 5)):
            position = power + math.log10(mantissa)
            if low <= position <= high:
                ticks.append(position)
    return ticks, [value_label(10 ** t) for t in ticks]


def duration_label(seconds: float) -> str:
    """30s, 5m, 1h30m, 2d4h."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours}h{rest // 60}m" if rest // 60 else f"{hours}h"
    days, rest = divmod(seconds, 86400)
    return f"{days}d{rest // 3600}h" if rest // 3600 else f"{days}d"


def axis_ticks(x_axis: str, low: float, high: float, count: int,
               start_time: float | None = None) -> tuple[list[float], list[str]]:
    """Tick positions and labels of an x axis: whole steps, durations since the start, or clock times."""
    if x_axis == "step":
        ticks = [float(t) for t in step_ticks(low, high, count)]
        return ticks, [step_label(int(t)) for t in ticks]
    raw = (high - low) / max(count - 1, 1)
    spacing = next((s for s in _TIME_STEPS_S if s >= raw), max(raw, 1.0))
    offset = time.localtime(low).tm_gmtoff if x_axis == "wall" and math.isfinite(low) else 0
    first = math.ceil((low + offset) / spacing) * spacing - offset
    ticks = []
    value = first
    while value <= high and len(ticks) < 50:
        ticks.append(float(value))
        value += spacing
    if x_axis == "relative":
        return ticks, [duration_label(t) for t in ticks]
    day = high - low > 86400
    fmt = "%m-%d %H:%M" if day else ("%H:%M" if spacing >= 60 else "%H:%M:%S")
    return ticks, [time.strftime(fmt, time.localtime(t)) for t in ticks]


def x_label(x_axis: str, x: float) -> str:
    """The cursor's position as the readout says it."""
    if x_axis == "step":
        return f"step {int(round(x))}"
    if x_axis == "relative":
        return f"{duration_label(x)} in"
    return time.strftime("%m-%d %H:%M:%S", time.localtime(x))


class XCache:
    """The x positions of series on a time axis (steps mapped to record times), extended as they grow."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, str], tuple[int, int, int, np.ndarray]] = {}

    def x_of(self, series: Series, x_axis: str, times: Series | None, start_time: float | None) -> np.ndarray:
        """`series`'s steps on the axis: the steps themselves, or the record time at each step (wall), minus
        the run's first time (relative)."""
        if x_axis == "step":
            return series.steps
        if times is None or not times.count:
            return np.full(series.count, np.nan)
        key = (id(series), x_axis)
        cached = self._cache.get(key)
        stamp = (series.count, series.version, times.count)
        if cached is not None and cached[:3] == stamp:
            return cached[3]
        x = np.interp(series.steps, times.steps, times.values)
        if x_axis == "relative":
            x = x - (start_time if start_time is not None else float(times.values[0]))
        self._cache[key] = (*stamp, x)
        return x


def plot_series(label: str, series: Series, x: np.ndarray, dense: bool, marker: str, smoothing: float,
                smoother: IncrementalEma | None, style: str = "") -> PlotSeries:
    """A series ready to draw: dense ones smoothed (TensorBoard's debiased EMA over the raw points)."""
    smoothed = None
    if dense and smoothing > 0 and smoother is not None:
        smoothed = smoother.of(series, smoothing)
    keep = np.isfinite(x)
    steps, values = series.steps, series.values
    if not keep.all():
        x, steps, values = x[keep], steps[keep], values[keep]
        smoothed = smoothed[keep] if smoothed is not None else None
    return PlotSeries(label, x, steps, values, dense, marker, smoothed, style)

