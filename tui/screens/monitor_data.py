"""What the Monitor shows, computed off the UI thread: a `MonitorView` built from a RunFollower.

`MonitorModel.update()` returns None when nothing changed (no new bytes, same status,
same checkpoints, same chart sizes), so an idle run costs a few stats and no redraw.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.rundir import ACTIVE_STATES, CheckpointFile, RunDir
from tui.follow import RunFollower
from tui.series import Series, downsample_minmax, ema_debiased, y_range
from tui.summary import format_eta
from tui.widgets.line_chart import ChartLine

SMOOTHING_STEPS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)
DEFAULT_SMOOTHING = 0.6


@dataclass
class ChartSpec:
    """The lines of one chart, already smoothed and downsampled, with its y-range."""

    lines: list[ChartLine]
    y_limits: tuple[float, float] | None
    title: str


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
    events: list[str]
    log_lines: list[str]
    error: str | None
    verdict: str
    malformed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def smoothing_step(current: float, direction: int) -> float:
    """The next smoothing weight up (+1) or down (-1) the ladder."""
    index = min(range(len(SMOOTHING_STEPS)), key=lambda i: abs(SMOOTHING_STEPS[i] - current))
    index = max(0, min(len(SMOOTHING_STEPS) - 1, index + direction))
    return SMOOTHING_STEPS[index]


def _smoothed_line(label: str, series: Series, smoothing: float, width: int, marker: str) -> ChartLine:
    values = ema_debiased(series.values, smoothing) if smoothing > 0 else series.values
    steps, values = downsample_minmax(series.steps, values, max(8, width))
    return ChartLine(label, np.asarray(steps), np.asarray(values), marker)


def chart_spec(title: str, train: Series, val: Series, smoothing: float, width: int,
               clamp: tuple[float, float] | None = None) -> ChartSpec:
    """Train (smoothed) and val lines, downsampled to `width`, y-range from the 5th-95th percentile."""
    lines = [_smoothed_line("train", train, smoothing, width, "braille"),
             _smoothed_line("val", val, 0.0, width, "•")]
    limits = y_range(lines[0].values, lines[1].values)
    if limits is not None and clamp is not None:
        limits = (max(clamp[0], limits[0]), min(clamp[1], limits[1]))
    return ChartSpec(lines, limits, title)


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


class MonitorModel:
    """Follows one run and builds views for given chart widths, smoothing and picture kind."""

    def __init__(self, run: RunDir):
        self.run = run
        self.follower = RunFollower(run)
        self._lock = threading.Lock()
        self._checkpoint_signature: tuple[Any, ...] | None = None
        self._checkpoints: list[CheckpointFile] = []
        self._params: tuple[Any, ...] | None = None
        self._picture_key: tuple[str, str] | None = None
        self._picture: np.ndarray | None = None
        self._picture_error: str | None = None

    def update(self, loss_width: int, attention_width: int, smoothing: float, picture_kind: str,
               force: bool = False) -> MonitorView | None:
        with self._lock:
            changed = self.follower.poll()
            checkpoints = self.run.checkpoints()
            signature = tuple((c.step, c.size, c.mtime) for c in checkpoints)
            params = (loss_width, attention_width, smoothing, picture_kind)
            if signature != self._checkpoint_signature:
                self._checkpoint_signature, self._checkpoints = signature, checkpoints
                changed = True
            if params != self._params:
                self._params, changed = params, True
            if not changed and not force:
                return None
            return self._build(loss_width, attention_width, smoothing, picture_kind)

    def _picture_for(self, kind: str) -> tuple[np.ndarray | None, str]:
        record = self.follower.history.alignment
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
                self._picture = matrix.T if kind == "alignment" else matrix
            except (OSError, ValueError) as exc:
                self._picture, self._picture_error = None, f"cannot read {path.name}: {exc}"
        other = "mel" if kind == "alignment" else "alignment"
        name = "alignment" if kind == "alignment" else "predicted mel"
        if self._picture_error:
            return None, f"{name} · step {step}: {self._picture_error}"
        return self._picture, f"{name} · step {step} (m: {other})"

    def _build(self, loss_width: int, attention_width: int, smoothing: float, picture_kind: str) -> MonitorView:
        history, status = self.follower.history, self.follower.status or {}
        last_train = history.last_train or {}
        step = int(max(float(status.get("step") or 0), float(last_train.get("step") or 0)))
        total = int(status.get("total_steps") or 0)
        rate = history.steps_per_s()
        state = self.follower.state
        eta = (total - step) / rate if rate and total > step and state in ACTIVE_STATES else None
        legend = f"train ⠤⠤ ema {smoothing:g} [ ], val ••"
        loss = chart_spec(f"loss · {legend}", history.train_loss, history.val_loss, smoothing, loss_width)
        attention = chart_spec(f"attention score (good > 0.3) · {legend}", history.train_attention,
                               history.val_attention, smoothing, attention_width, clamp=(0.0, 1.0))
        picture, picture_title = self._picture_for(picture_kind)
        events = [format_event(r) for r in list(history.events)[-20:]]
        if history.end is not None:
            events.append(f"end: {history.end.get('reason', '?')} at step {history.end.get('step', '?')}")
        verdict = next((str(r.get("message") or r.get("code")) for r in reversed(history.events)
                        if r.get("code") in ("overtraining", "early_stop")), "-")
        start = history.start or {}
        return MonitorView(
            name=self.run.name, state=state, step=step, total_steps=total,
            epoch=int(status.get("epoch") or last_train.get("epoch") or 0),
            world_size=start.get("world_size"), steps_per_s=rate, eta_s=eta, loss=loss,
            attention=attention, picture=picture, picture_title=picture_title,
            picture_normalise="max" if picture_kind == "alignment" else "minmax",
            checkpoints=list(self._checkpoints), checkpoint_records=dict(history.checkpoint_records),
            events=events, log_lines=list(self.follower.log_lines),
            error=status.get("error") if state in ("failed", "stale") else None, verdict=verdict,
            malformed=self.follower.malformed)
