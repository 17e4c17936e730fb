"""What the Monitor shows, computed off the UI thread: a `MonitorView` built from a RunFollower.

`MonitorModel.update()` returns None when nothing changed (no new bytes, same status,
same checkpoints, same chart sizes), so an idle run costs a few stats and no redraw.
Following a live run stays cheap: new records rebuild the charts at most every
CHART_INTERVAL_S (a new size or smoothing at once), smoothing extends by the new points,
the overtraining analysis runs only on new val or checkpoint records, and the parts of a
view that did not change are the same objects as in the previous one, so the screen can
skip them.
"""

from __future__ import annotations

import math
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from trainer.health_records import HealthSummary
from trainer.rundir import ACTIVE_STATES, CheckpointFile, RunDir, finite
from trainer.rundir.source import RunSource, as_source
from tui.follow import RunFollower
from tui.run_analysis import LiveAnalysis, checkpoint_tags
from tui.states import state_word
from tui.series import IncrementalEma, Series, downsample_minmax, y_range
from tui.summary import format_eta
from tui.widgets.chart_model import (DENSE_KINDS, ChartSpec, ChartWindow, XCache, assign_markers, build_chart,
                                     chart_title, metric_field, metric_kind, plot_series, x_label)
from tui.widgets.chart_state import load_choice, metrics_choice
from tui.widgets.line_chart import ChartLine

SMOOTHING_STEPS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)
DEFAULT_SMOOTHING = 0.6
CHART_INTERVAL_S = 5.0  # new records redraw the charts at most this often (TensorBoard: every 30 s)
#: The Monitor's two charts until the user picks others: loss (train and val) and attention score.
DEFAULT_CHARTS: tuple[tuple[str, ...], ...] = (("train/loss", "val/loss"),
                                               ("train/attention_score", "val/attention_score"))


@dataclass(frozen=True)
class ChartSettings:
    """What the Monitor's charts show: the metrics of each (None: the run's remembered choice, else the
    defaults) and the x window they share."""

    metrics: tuple[tuple[str, ...], ...] | None = None
    window: ChartWindow = ChartWindow()


@dataclass
class MonitorView:
    """Everything the Monitor draws at one moment."""

    name: str
    state: str
    step: int
    total_steps: int
    epoch: int
    world_size: int | None
    steps_per_s: float | None
    eta_s: float | None
    loss: ChartSpec
    attention: ChartSpec
    picture: np.ndarray | None
    picture_title: str
    picture_normalise: str
    checkpoints: list[CheckpointFile]
    checkpoint_records: dict[int, dict[str, Any]]
    checkpoint_tags: dict[int, list[str]]
    recommended: int | None
    events: list[str]
    log_lines: list[str]
    error: str | None
    verdict: str
    malformed: int = 0
    analysis: dict[str, Any] = field(default_factory=dict)
    checkpoint_health: dict[int, HealthSummary] = field(default_factory=dict)
    command: str | None = None
    """The command line of a run started by `voxtop launch`, shown under the title."""
    """Read-through health of the checkpoints still on disk (those checked so far)."""
    health: HealthSummary | None = None
    """The newest checked checkpoint's health (its file may be gone), None for none yet."""
    extra: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    """status.json as last read (pid, host, heartbeat), for what the title says about the trainer."""
    ended: bool = False
    """The run wrote its `end` record: a trainer that stopped without one was killed or crashed."""
    chart_metrics: tuple[tuple[str, ...], ...] = DEFAULT_CHARTS
    """The metrics each chart shows."""
    metric_names: list[str] = field(default_factory=list)
    """Every metric the run's records hold (what the metric picker offers)."""
    cursor_text: str = ""
    """The cursor readout: each series' raw and smoothed value at the cursor and the nearest checkpoint."""
    chart_extent: tuple[float, float] | None = None
    """The x range of everything charted (what home, end and zoom reach)."""


def smoothing_step(current: float, direction: int) -> float:
    """The next smoothing weight up (+1) or down (-1) the ladder."""
    index = min(range(len(SMOOTHING_STEPS)), key=lambda i: abs(SMOOTHING_STEPS[i] - current))
    index = max(0, min(len(SMOOTHING_STEPS) - 1, index + direction))
    return SMOOTHING_STEPS[index]


def _line(label: str, steps: np.ndarray, values: np.ndarray, width: int, marker: str,
          connect: bool = True) -> ChartLine:
    steps, values = downsample_minmax(steps, values, max(8, width))
    return ChartLine(label, np.asarray(steps), np.asarray(values), marker, connect)


def chart_spec(title: str, train: Series, val: Series, smoothing: float, width: int,
               clamp: tuple[float, float] | None = None, smoother: IncrementalEma | None = None) -> ChartSpec:
    """Train (smoothed) as a line and val as points, downsampled to `width`, y-range from the 5th-95th
    percentile. Val points are not joined: plotext joins two far points with a staircase of `•`."""
    smoothed = (smoother or IncrementalEma()).of(train, smoothing)
    lines = [_line("train", train.steps, smoothed, width, "braille"),
             _line("val", val.steps, val.values, width, "•", connect=False)]
    limits = y_range(lines[0].values, lines[1].values)
    if limits is not None and clamp is not None:
        limits = (max(clamp[0], limits[0]), min(clamp[1], limits[1]))
    return ChartSpec(lines, limits, title)


def _steps(steps: np.ndarray) -> np.ndarray:
    return np.asarray(steps, dtype=np.float64)


def mark_minima(spec: ChartSpec, val: Series, analysis: dict[str, Any], step_x: Any = _steps,
                log_y: bool = False) -> ChartSpec:
    """`spec` with a ▼ at each val-loss minimum and a │ at the overtraining onset, named in the title.

    `step_x` maps steps to the chart's x (time axes); `log_y`: the chart's values are log10."""
    minima = np.asarray(analysis.get("minima") or [], dtype=np.float64)
    onset = analysis.get("onset_step")
    if not len(minima) and onset is None:
        return spec
    title, lines, limits = spec.title, list(spec.lines), spec.y_limits
    if len(minima):
        at = np.clip(np.searchsorted(val.steps, minima), 0, max(0, val.count - 1))
        values = val.values[at]
        if log_y:
            values = np.log10(np.where(values > 0, values, np.nan))
        lines.append(ChartLine("minimum", step_x(minima), values, "▼", connect=False))
        title += " · ▼ val minimum"
        x_limits = spec.x_limits or (-np.inf, np.inf)
        shown = values[(step_x(minima) >= x_limits[0]) & (step_x(minima) <= x_limits[1]) & np.isfinite(values)]
        if limits is not None and len(shown):  # keep the markers in view inside the plot
            low = float(shown.min())
            limits = (min(limits[0], low - 0.05 * (limits[1] - low)), limits[1])
    if onset is not None:
        title += f" · │ overtraining from {onset}"
    vlines = [float(step_x(np.array([float(onset)]))[0])] if onset is not None else []
    return replace(spec, lines=lines, y_limits=limits, title=title, vlines=vlines)


HEALTH_MARKERS = {"reads to the end": "▲", "understood": "◆"}


def health_lines(health: dict[int, HealthSummary]) -> list[ChartLine]:
    """Per checked checkpoint, the share of sentences read to the end (▲) and understood (◆), 0..1."""
    if not health:
        return []
    checked = [health[step] for step in sorted(health)]
    steps = np.asarray([h.step for h in checked], dtype=np.float64)
    reads = np.asarray([h.reads_fraction for h in checked], dtype=np.float64)
    lines = [ChartLine("reads to the end", steps, reads, HEALTH_MARKERS["reads to the end"], connect=False)]
    heard = [(h.step, h.understood_fraction) for h in checked if h.understood_fraction is not None]
    if heard:
        points = np.asarray(heard, dtype=np.float64)
        lines.append(ChartLine("understood", points[:, 0], points[:, 1], HEALTH_MARKERS["understood"],
                               connect=False))
    return lines


def with_health(spec: ChartSpec, health: dict[int, HealthSummary], step_x: Any = _steps) -> ChartSpec:
    """The attention chart with the checkpoints' read-through health on the same 0..1 scale."""
    lines = [replace(line, steps=step_x(line.steps)) for line in health_lines(health)]
    if not lines:
        return spec
    values = np.concatenate([line.values for line in lines])
    low, high = (float(values.min()), float(values.max()))
    if spec.y_limits is not None:
        low, high = min(low, spec.y_limits[0]), max(high, spec.y_limits[1])
    if high - low < 0.1:  # every checkpoint at 0/n (or n/n): still show the markers inside the plot
        low, high = max(0.0, low - 0.05), min(1.0, high + 0.05)
    legend = " ◆ understood" if len(lines) > 1 else ""
    # the legend of the health markers first: at 80 columns the end of the title is cut
    title = f"▲ reads to the end{legend} · {spec.title}"
    return replace(spec, lines=[*spec.lines, *lines], y_limits=(low, high), title=title)


def verdict_text(analysis: dict[str, Any], events: Any) -> str:
    """improving / plateau / overtraining since step N / collapsed, from the analysis or the trainer's events."""
    verdict = analysis.get("verdict")
    if verdict is None:  # no val record read (yet): the trainer's own event, if any
        verdict = next((r for r in reversed(events) if r.get("code") == "overtraining" and r.get("verdict")), None)
    if verdict is None:
        return "-"
    name, onset = str(verdict.get("verdict")), verdict.get("onset_step")
    return f"overtraining since step {onset}" if name == "overtraining" and onset is not None else name


def title_text(view: MonitorView, asked: str | None = None) -> str:
    """The Monitor's title: run, state, epoch and verdict; then a line on what the trainer is doing
    (stopping, killed, gone) or its error. `asked` is "stop" or "kill" once the user asked for it."""
    live = view.state in ACTIVE_STATES
    state = state_word(view.state)
    if asked == "stop" and view.state in ("starting", "running"):
        state = "stopping"  # the trainer says so itself after its current step; say it at once
    processes = f" · {view.world_size} processes" if (view.world_size or 1) > 1 else ""
    verdict = f"verdict: {view.verdict}" if live else f"last verdict: {view.verdict}"
    title = f"{view.name} · {state.upper()}{processes} · epoch {view.epoch} · {verdict}"
    detail = _state_detail(view, asked) or (f"command: {view.command}" if view.command else None)
    if detail:
        title += "\n" + detail
    return title


def _state_detail(view: MonitorView, asked: str | None) -> str | None:
    newest = view.checkpoints[-1].step if view.checkpoints else None
    saved = f"checkpoints up to step {newest} are safe (r: resume)" if newest is not None else "no checkpoint was saved"
    if view.state in ("starting", "running") and asked == "stop":
        return "stopping: the trainer finishes its step, then saves a checkpoint…"
    if view.state == "stopping":
        if newest is not None and newest >= view.step:
            return f"stopping: checkpoint saved at step {newest}; checking its read-through health, then exiting…"
        return f"stopping: saving a checkpoint at step {view.step}…"
    if view.state == "stale" and not view.ended:
        pid, host = view.status.get("pid"), view.status.get("host")
        who = f"the trainer (pid {pid})" if pid else "the trainer"
        if host and host != socket.gethostname():
            heartbeat = float(view.status.get("updated_at") or 0)
            since = time.strftime("%H:%M:%S", time.localtime(heartbeat)) if heartbeat else "?"
            return f"{who} on {host} has written nothing since {since}: stopped, or the host is down; {saved}"
        how = "killed from here" if asked == "kill" else "killed or crashed"
        return f"{who} is gone ({how}) after step {view.step}, without a final save; {saved}"
    if view.error:
        return f"error: {view.error}"
    return None


def format_event(record: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(float(record.get("t") or 0)))
    return (f"{stamp} {record.get('level', 'info')} {record.get('code', '?')}: "
            f"{record.get('message', '')}").rstrip()


def progress_text(view: MonitorView, width: int) -> str:
    """`[████░░░░] 42% step 420/1000 · ETA 0:12:00 · 0.52 steps/s` fitted to `width`."""
    rate = f" · {view.steps_per_s:.2f} steps/s" if view.steps_per_s else ""
    if view.total_steps:
        fraction = min(1.0, view.step / view.total_steps)
        tail = f" {fraction * 100:3.0f}% step {view.step}/{view.total_steps} · ETA {format_eta(view.eta_s)}{rate}"
        bar_width = max(5, width - len(tail) - 2)
        filled = int(round(fraction * bar_width))
        return "[" + "█" * filled + "░" * (bar_width - filled) + "]" + tail
    return f"step {view.step}{rate}"


def _number(value: Any, default: float) -> float:
    """A record's or status's field as a finite float (`trainer.rundir.finite`), else `default`."""
    number = finite(value)
    return default if number is None else number


def heartbeat_rate(start: dict[str, Any] | None, status: dict[str, Any]) -> float | None:
    """Steps per second from the `start` record to the newest status heartbeat: a rate before the first log line."""
    if start is None:
        return None
    elapsed = _number(status.get("updated_at"), 0.0) - _number(start.get("t"), math.inf)
    steps = _number(status.get("step"), 0.0) - _number(start.get("step"), math.inf)
    return steps / elapsed if elapsed > 0 and steps > 0 else None


class MonitorModel:
    """Follows one run and builds views for given chart widths, smoothing and picture kind."""

    def __init__(self, run: RunDir | RunSource, clock: Any = time.monotonic):
        self.source = as_source(run)
        """Where the run is read from (`trainer.rundir.source`): every file the Monitor shows comes through it."""
        self.follower = RunFollower(self.source)
        self.analysis: LiveAnalysis | None = None  # made on the first update, off the UI thread: it reads config.toml
        self._clock = clock
        self._lock = threading.Lock()
        self._folder_signature: tuple[int, int] | None = None
        self._checkpoint_signature: tuple[Any, ...] | None = None
        self._checkpoints: list[CheckpointFile] = []
        self._params: tuple[Any, ...] | None = None
        # what the charts were last built from: view settings, evaluations and checkpoints, train points
        self._built: tuple[Any, Any, int] = ((), (), -1)
        self._charts: tuple[ChartSpec, ChartSpec] | None = None
        self._charts_at = -math.inf
        self._smoothers: dict[str, IncrementalEma] = {}
        self._x = XCache()
        self.chart_settings = ChartSettings()
        """Set by the screen (UI thread) before it asks for a view; read by `update` in its worker."""
        self._remembered: tuple[tuple[str, ...], ...] | None = None
        self._remembered_read = False
        self._table: tuple[list[CheckpointFile], dict[int, list[str]], dict[int, dict[str, Any]],
                           dict[int, HealthSummary]] = ([], {}, {}, {})
        self._picture_key: tuple[str, str] | None = None
        self._picture: np.ndarray | None = None
        self._picture_error: str | None = None

    def update(self, loss_width: int, attention_width: int, smoothing: float, picture_kind: str,
               force: bool = False, picture_step: int | None = None) -> MonitorView | None:
        """A new view when anything changed (None if not); `picture_step`: the checkpoint whose picture
        to show (None: the newest alignment record's)."""
        with self._lock:
            if self.analysis is None:  # another trainer's run brings its own (trainer.foreign)
                live = getattr(self.source, "live_analysis", None)
                self.analysis = live() if live is not None else LiveAnalysis(self.source.detector_config())
            self._want_chart_fields()
            changed = self.follower.poll()
            if self._list_checkpoints(force):
                changed = True
            params = (loss_width, attention_width, smoothing, picture_kind, picture_step, self.chart_settings)
            if params != self._params:
                self._params, changed = params, True
            if not changed and self._charts_behind():
                changed = True  # records held back by the interval, and none came since: draw them now
            if not changed and not force:
                return None
            return self._build(loss_width, attention_width, smoothing, picture_kind, force, picture_step)

    def _list_checkpoints(self, force: bool) -> bool:
        """Re-list checkpoints/ only when the folder changed (a file written, renamed or deleted)."""
        folder_path = self.source.checkpoints_dir
        try:
            stat = folder_path.stat() if folder_path is not None else None
            folder = (stat.st_mtime_ns, stat.st_ino) if stat is not None else None
        except FileNotFoundError:
            folder = None
        if folder == self._folder_signature and folder is not None and not force:
            return False
        self._folder_signature = folder
        checkpoints = self.source.checkpoints()
        signature = tuple((c.step, c.size, c.mtime) for c in checkpoints)
        if signature == self._checkpoint_signature:
            return False
        self._checkpoint_signature, self._checkpoints = signature, checkpoints
        return True

    def _charts_for(self, loss_width: int, attention_width: int, smoothing: float,
                    force: bool) -> tuple[ChartSpec, ChartSpec]:
        """The chart specs: rebuilt at once for new settings (size, smoothing) or a replaced history,
        else on new records (train, val or checkpoint) at most every CHART_INTERVAL_S; a new health record at once."""
        settings = self.chart_settings
        metrics = self._chart_metrics(settings)
        history = self.follower.history
        view = (loss_width, attention_width, smoothing, id(history), history.val_loss.version, settings, metrics)
        evaluations = (id(history), history.val_loss.version, history.val_loss.count,
                       len(history.checkpoint_records), self._checkpoint_signature, history.health_version)
        built = (view, evaluations, history.train_loss.count)
        now = self._clock()
        # a health record (one per checkpoint, rare) changes the recommendation: never held back
        health_seen = bool(self._built[1]) and self._built[1][-1] == history.health_version
        if self._charts is not None and not force and view == self._built[0] and health_seen and (
                built == self._built or now - self._charts_at < CHART_INTERVAL_S):
            return self._charts
        if evaluations != self._built[1] or self._charts is None:  # new evaluations or checkpoints
            existing = {c.step for c in self._checkpoints}
            self.analysis.update(history.train_loss, history.val_loss, history.val_attention,
                                 history.checkpoint_records, existing, history.health)
        charts = [self._metric_chart(history, chart, settings.window, smoothing, width)
                  for chart, width in zip(metrics, (loss_width, attention_width))]
        self._charts = (charts[0], charts[1])
        self._built, self._charts_at = built, now
        return self._charts

    def _charts_behind(self) -> bool:
        """Whether the charts were drawn before the newest train or val points and the interval is up."""
        history = self.follower.history
        if self._charts is None or self._clock() - self._charts_at < CHART_INTERVAL_S:
            return False
        return self._built[2] != history.train_loss.count or self._built[1][2:3] != (history.val_loss.count,)

    def _want_chart_fields(self) -> None:
        """Have the follower read every field the charts need (a new one: the run is read again with it)."""
        settings = self.chart_settings
        needed = {m for chart in self._chart_metrics(settings) for m in chart}
        if settings.window.x_axis != "step":
            needed |= {f"{metric_kind(m)}/t" for m in needed} | {"train/t"}
        self.follower.want(needed)

    def _chart_metrics(self, settings: ChartSettings) -> tuple[tuple[str, ...], ...]:
        """The metrics of the two charts: the screen's choice, else the run's remembered one, else the defaults."""
        if settings.metrics is not None:
            return settings.metrics
        if not self._remembered_read:
            self._remembered_read = True
            remembered = metrics_choice(load_choice(self.source.path))
            if remembered is not None and len(remembered) == 2 and all(remembered):
                self._remembered = remembered
        return self._remembered or DEFAULT_CHARTS

    def _origin(self, history: Any) -> float | None:
        """The first record time: where a relative time axis starts."""
        firsts = [float(s.values[0]) for s in (history.metrics.get("train/t"), history.metrics.get("val/t"))
                  if s is not None and s.count]
        return min(firsts) if firsts else None

    def _step_x(self, history: Any, window: ChartWindow, origin: float | None) -> Any:
        """Steps to the chart's x: themselves, or the train record time at each step (less the origin)."""
        times = history.metrics.get("train/t")
        if window.x_axis == "step" or times is None or not times.count:
            return _steps
        shift = origin if window.x_axis == "relative" and origin is not None else 0.0
        return lambda steps: np.interp(np.asarray(steps, dtype=np.float64), times.steps, times.values) - shift

    def _metric_chart(self, history: Any, metrics: tuple[str, ...], window: ChartWindow, smoothing: float,
                      width: int) -> ChartSpec:
        """One chart of `metrics` in `window`: dense ones smoothed, val loss minima and health marked."""
        markers = assign_markers(metrics)
        fields = {metric_field(m) for m in metrics}
        origin = self._origin(history)
        series = []
        for metric, marker in zip(metrics, markers):
            kind = metric_kind(metric)
            data = history.metrics.get(metric) or Series(1)
            x = self._x.x_of(data, window.x_axis, history.metrics.get(f"{kind}/t"), origin)
            smoother = self._smoothers.setdefault(metric, IncrementalEma())
            label = kind if len(fields) == 1 else metric
            series.append(plot_series(label, data, x, kind in DENSE_KINDS, marker, smoothing, smoother))
        spec = build_chart(series, window, width, chart_title(metrics, markers, smoothing), origin)
        if len(fields) == 1 and spec.readout:
            spec.readout[0] = f"{next(iter(fields))}: {spec.readout[0]}"
        if fields == {"attention_score"} and spec.y_limits is not None and not window.log_y:
            spec.y_limits = (max(0.0, spec.y_limits[0]), min(1.0, spec.y_limits[1]))
        step_x = self._step_x(history, window, origin)
        if "val/loss" in metrics and self.analysis is not None:
            spec = mark_minima(spec, history.val_loss, self.analysis.result, step_x, window.log_y)
        if "attention_score" in fields and not window.log_y:
            spec = with_health(spec, history.health, step_x)
        return spec

    def rechart(self, loss_width: int, attention_width: int,
                smoothing: float) -> tuple[ChartSpec, ChartSpec, str] | None:
        """The charts (and cursor readout) for new chart settings from what was read already, reading no
        file: what a zoom, pan or cursor key shows at once, on the UI thread. None while a poll holds the
        model, before the first view, or when the settings need a field not read yet (the worker's view
        follows then)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._charts is None or not self._fields_read():
                return None
            loss, attention = self._charts_for(loss_width, attention_width, smoothing, False)
            return loss, attention, self.cursor_text((loss, attention), self.chart_settings.window)
        finally:
            self._lock.release()

    def _fields_read(self) -> bool:
        """Whether the follower reads every field the chart settings need."""
        settings = self.chart_settings
        needed = {m for chart in self._chart_metrics(settings) for m in chart}
        if settings.window.x_axis != "step":
            needed |= {f"{metric_kind(m)}/t" for m in needed} | {"train/t"}
        read = {f"{kind}/{name}" for kind, names in self.follower.fields.items() for name in names}
        return needed <= read

    def cursor_text(self, charts: tuple[ChartSpec, ChartSpec], window: ChartWindow) -> str:
        """The readout at the cursor: its position, each chart's series, the nearest checkpoint."""
        if window.cursor is None or not any(c.readout for c in charts):
            return ""
        parts = [x_label(window.x_axis, window.cursor)]
        parts += ["; ".join(c.readout) for c in charts if c.readout]
        step = next((c.cursor_step for c in charts if c.cursor_step is not None), None)
        if step is not None and self._checkpoints:
            steps = np.asarray([c.step for c in self._checkpoints], dtype=np.float64)
            nearest = int(steps[int(np.argmin(np.abs(steps - step)))])
            analysis = self.analysis.result if self.analysis is not None else {}
            tags = list(checkpoint_tags(analysis, nearest, self.follower.history.checkpoint_records.get(nearest, {})))
            note = f" ({', '.join(tags)})" if tags else ""
            parts.append(f"nearest checkpoint: step {nearest}{note}")
        return " · ".join(parts)

    def _picture_for(self, kind: str, picture_step: int | None = None) -> tuple[np.ndarray | None, str]:
        record = self.follower.history.alignment
        chosen = ""
        if picture_step is not None and (record is None or record.get("step") != picture_step):
            # a checkpoint chosen in the table: its own picture, by the run contract's file name
            step: Any = picture_step
            path = self.source.picture_for_step(step, kind)
            chosen = " selected"
            if path is None or not path.is_file():
                return None, f"{kind} · step {step}: no picture kept for this checkpoint"
        else:
            if record is None:
                return None, "alignment: none yet (drawn at each checkpoint)"
            step = record.get("step", "?")
            path = self.source.picture_path(record, kind)
            if path is None:
                return None, f"{kind}: not recorded at step {step}"
        key = (kind, str(path))
        if key != self._picture_key:
            self._picture_key, self._picture_error = key, None
            try:
                matrix = np.load(path, allow_pickle=False)
                if matrix.ndim != 2:
                    raise ValueError(f"expected a 2-D array, found shape {matrix.shape}")
                if not np.issubdtype(matrix.dtype, np.number):
                    raise ValueError(f"expected numbers, found {matrix.dtype}")
                self._picture = matrix.T if kind == "alignment" else matrix
            except (OSError, ValueError, EOFError) as exc:
                self._picture, self._picture_error = None, f"cannot read {path.name}: {exc}"
        other = "mel" if kind == "alignment" else "alignment"
        name = "alignment" if kind == "alignment" else "predicted mel"
        if self._picture_error:
            return None, f"{name} · step {step}: {self._picture_error}"
        return self._picture, f"{name} ·{chosen} step {step} (m: {other})"

    def _table_for(self) -> tuple[list[CheckpointFile], dict[int, list[str]], dict[int, dict[str, Any]],
                                  dict[int, HealthSummary]]:
        """Checkpoint files, tags, records and health: the same objects while none changed, so the table skips them."""
        records, health = self.follower.history.checkpoint_records, self.follower.history.health
        shown = {c.step: records[c.step] for c in self._checkpoints if c.step in records}
        tags = {c.step: checkpoint_tags(self.analysis.result, c.step, records.get(c.step, {}))
                for c in self._checkpoints}
        checked = {c.step: health[c.step] for c in self._checkpoints if c.step in health}
        if (self._table[0] is not self._checkpoints or tags != self._table[1] or shown != self._table[2]
                or checked != self._table[3]):
            self._table = (self._checkpoints, tags, shown, checked)
        return self._table

    def _build(self, loss_width: int, attention_width: int, smoothing: float, picture_kind: str,
               force: bool = False, picture_step: int | None = None) -> MonitorView:
        history, status = self.follower.history, self.follower.status or {}
        last_train = history.last_train or {}
        step = int(max(float(status.get("step") or 0), float(last_train.get("step") or 0)))
        total = int(status.get("total_steps") or 0)
        rate, logged_step = history.steps_per_s(), _number(last_train.get("step"), step)
        if rate is None:  # no interval logged since the (re)start: from the start record to the heartbeat
            rate, logged_step = heartbeat_rate(history.start, status), step
        state = self.follower.state
        # train.log's ETA: the logged interval's rate times the steps left after the newest log line
        eta = (total - logged_step) / rate if rate and total > logged_step and state in ACTIVE_STATES else None
        loss, attention = self._charts_for(loss_width, attention_width, smoothing, force)
        extents = [c.extent for c in (loss, attention) if c.extent is not None]
        chart_extent = (min(e[0] for e in extents), max(e[1] for e in extents)) if extents else None
        picture, picture_title = self._picture_for(picture_kind, picture_step)
        events = [format_event(r) for r in list(history.events)[-20:]]
        if history.end is not None:
            events.append(f"end: {history.end.get('reason', '?')} at step {history.end.get('step', '?')}")
        elif state == "stale":
            heartbeat = float(status.get("updated_at") or 0)
            stamp = time.strftime("%H:%M:%S", time.localtime(heartbeat)) if heartbeat else "--:--:--"
            events.append(f"{stamp} error trainer_gone: no end record after step {step} (killed or crashed)")
        checkpoints, tags, records, checked = self._table_for()
        start = history.start or {}
        analysis = self.analysis.result
        launched = getattr(self.source, "command", None)
        return MonitorView(
            command=shlex.join(launched) if launched else None,
            name=self.source.name, state=state, step=step, total_steps=total,
            epoch=int(status.get("epoch") or last_train.get("epoch") or 0),
            world_size=start.get("world_size"), steps_per_s=rate, eta_s=eta, loss=loss,
            attention=attention, picture=picture, picture_title=picture_title,
            picture_normalise="max" if picture_kind == "alignment" else "minmax",
            checkpoints=checkpoints, checkpoint_records=records,
            checkpoint_tags=tags, recommended=analysis.get("recommended"),
            events=events, log_lines=self.follower.log_lines,
            error=status.get("error") if state in ("failed", "stale") else None,
            verdict=verdict_text(analysis, history.events), malformed=self.follower.malformed,
            analysis=analysis, checkpoint_health=checked,
            health=history.health[max(history.health)] if history.health else None,
            status=dict(status), ended=history.end is not None,
            chart_metrics=self._chart_metrics(self.chart_settings), metric_names=history.metric_names(),
            cursor_text=self.cursor_text((loss, attention), self.chart_settings.window), chart_extent=chart_extent)
