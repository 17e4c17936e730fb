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
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.health_records import HealthSummary
from trainer.rundir import ACTIVE_STATES, CheckpointFile, RunDir
from tui.follow import RunFollower
from tui.run_analysis import LiveAnalysis, checkpoint_tags, detector_config
from tui.states import state_word
from tui.series import IncrementalEma, Series, downsample_minmax, y_range
from tui.summary import format_eta
from tui.widgets.line_chart import ChartLine

SMOOTHING_STEPS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)
DEFAULT_SMOOTHING = 0.6
CHART_INTERVAL_S = 5.0  # new records redraw the charts at most this often (TensorBoard: every 30 s)


@dataclass
class ChartSpec:
    """The lines of one chart, already smoothed and downsampled, with its y-range."""

    lines: list[ChartLine]
    y_limits: tuple[float, float] | None
    title: str
    vlines: list[float] = field(default_factory=list)


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
    """Read-through health of the checkpoints still on disk (those checked so far)."""
    health: HealthSummary | None = None
    """The newest checked checkpoint's health (its file may be gone), None for none yet."""
    extra: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    """status.json as last read (pid, host, heartbeat), for what the title says about the trainer."""
    ended: bool = False
    """The run wrote its `end` record: a trainer that stopped without one was killed or crashed."""


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


def mark_minima(spec: ChartSpec, val: Series, analysis: dict[str, Any]) -> ChartSpec:
    """`spec` with a ▼ at each val-loss minimum and a │ at the overtraining onset, named in the title."""
    minima = np.asarray(analysis.get("minima") or [], dtype=np.float64)
    onset = analysis.get("onset_step")
    if not len(minima) and onset is None:
        return spec
    title, lines, limits = spec.title, list(spec.lines), spec.y_limits
    if len(minima):
        at = np.clip(np.searchsorted(val.steps, minima), 0, max(0, val.count - 1))
        values = val.values[at]
        lines.append(ChartLine("minimum", minima, values, "▼", connect=False))
        title += " · ▼ val minimum"
        if limits is not None:  # keep the markers inside the plot
            low = float(values.min())
            limits = (min(limits[0], low - 0.05 * (limits[1] - low)), limits[1])
    if onset is not None:
        title += f" · │ overtraining from {onset}"
    return ChartSpec(lines, limits, title, [float(onset)] if onset is not None else [])


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


def with_health(spec: ChartSpec, health: dict[int, HealthSummary]) -> ChartSpec:
    """The attention chart with the checkpoints' read-through health on the same 0..1 scale."""
    lines = health_lines(health)
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
    return ChartSpec([*spec.lines, *lines], (low, high), title, spec.vlines)


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
    detail = _state_detail(view, asked)
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
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else default


def heartbeat_rate(start: dict[str, Any] | None, status: dict[str, Any]) -> float | None:
    """Steps per second from the `start` record to the newest status heartbeat: a rate before the first log line."""
    if start is None:
        return None
    elapsed = _number(status.get("updated_at"), 0.0) - _number(start.get("t"), math.inf)
    steps = _number(status.get("step"), 0.0) - _number(start.get("step"), math.inf)
    return steps / elapsed if elapsed > 0 and steps > 0 else None


class MonitorModel:
    """Follows one run and builds views for given chart widths, smoothing and picture kind."""

    def __init__(self, run: RunDir, clock: Any = time.monotonic):
        self.run = run
        self.follower = RunFollower(run)
        self.analysis = LiveAnalysis(detector_config(run.config_path))
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
        self._smoothers = (IncrementalEma(), IncrementalEma())
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
            changed = self.follower.poll()
            if self._list_checkpoints(force):
                changed = True
            params = (loss_width, attention_width, smoothing, picture_kind, picture_step)
            if params != self._params:
                self._params, changed = params, True
            if not changed and not force:
                return None
            return self._build(loss_width, attention_width, smoothing, picture_kind, force, picture_step)

    def _list_checkpoints(self, force: bool) -> bool:
        """Re-list checkpoints/ only when the folder changed (a file written, renamed or deleted)."""
        try:
            stat = self.run.checkpoints_dir.stat()
            folder = (stat.st_mtime_ns, stat.st_ino)
        except FileNotFoundError:
            folder = None
        if folder == self._folder_signature and folder is not None and not force:
            return False
        self._folder_signature = folder
        checkpoints = self.run.checkpoints()
        signature = tuple((c.step, c.size, c.mtime) for c in checkpoints)
        if signature == self._checkpoint_signature:
            return False
        self._checkpoint_signature, self._checkpoints = signature, checkpoints
        return True

    def _charts_for(self, loss_width: int, attention_width: int, smoothing: float,
                    force: bool) -> tuple[ChartSpec, ChartSpec]:
        """The chart specs: rebuilt at once for new settings (size, smoothing) or a replaced history,
        else on new records (train, val or checkpoint) at most every CHART_INTERVAL_S; a new health record at once."""
        history = self.follower.history
        view = (loss_width, attention_width, smoothing, id(history), history.val_loss.version)
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
        legend = f"train ⠤⠤ ema {smoothing:g} [ ], val ••"
        loss = chart_spec(f"loss · {legend}", history.train_loss, history.val_loss, smoothing, loss_width,
                          smoother=self._smoothers[0])
        attention = chart_spec(f"attention sharpness, not alignment · {legend}", history.train_attention,
                               history.val_attention, smoothing, attention_width, clamp=(0.0, 1.0),
                               smoother=self._smoothers[1])
        self._charts = (mark_minima(loss, history.val_loss, self.analysis.result),
                        with_health(attention, history.health))
        self._built, self._charts_at = built, now
        return self._charts

    def _picture_for(self, kind: str, picture_step: int | None = None) -> tuple[np.ndarray | None, str]:
        record = self.follower.history.alignment
        chosen = ""
        if picture_step is not None and (record is None or record.get("step") != picture_step):
            # a checkpoint chosen in the table: its own picture, by the run contract's file name
            step: Any = picture_step
            path = self.run.alignment_path(step) if kind == "alignment" else self.run.mel_path(step)
            chosen = " selected"
            if not path.is_file():
                return None, f"{kind} · step {step}: no picture kept for this checkpoint"
        else:
            if record is None:
                return None, "alignment: none yet (drawn at each checkpoint)"
            raw_path = record.get("path") if kind == "alignment" else record.get("mel")
            step = record.get("step", "?")
            if not raw_path:
                return None, f"{kind}: not recorded at step {step}"
            path = Path(raw_path)
            if not path.is_absolute():
                path = self.run.path / path
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
        return MonitorView(
            name=self.run.name, state=state, step=step, total_steps=total,
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
            status=dict(status), ended=history.end is not None)
