"""Follow a run directory: metrics by byte offset, the log's tail, checkpoints/ via watchdog.

`RunFollower.poll()` costs only the bytes appended since the last call (MetricsReader)
and reports whether anything changed, so the Monitor redraws only on new data. It runs
in worker threads; a lock keeps two polls from interleaving.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from trainer.health_records import HealthSummary, parse_health
from trainer.rundir import MetricsColumns, RunDir, read_tail, resumed_from_step
from trainer.rundir.source import RunSource, as_source
from trainer.rundir import as_float as _number
from tui.series import Series, rate_per_s

LOG_TAIL_BYTES = 16_384
RATE_WINDOW = 2  # train records kept for the step rate: the newest logged interval, as train.log's s/it
#: The numbers the charts need, read as arrays (no Python object per train record); metrics.index holds
#: exactly these, so a run attaches fast until a chart asks for another field.
CHART_FIELDS = {"train": ("step", "loss", "attention_score"), "val": ("step", "loss", "attention_score")}
#: Record kinds whose numeric fields are metrics a chart can show.
METRIC_KINDS = ("train", "val")
#: Numeric fields that are axes, not metrics.
AXIS_FIELDS = ("step", "t")


def numeric_fields(record: dict[str, Any]) -> set[str]:
    """The names of a record's number fields (booleans are not numbers here)."""
    return {key for key, value in record.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def fields_for(metrics: set[str] | frozenset[str],
               base: dict[str, tuple[str, ...]] | None = None) -> dict[str, tuple[str, ...]]:
    """The fields to read per kind for `metrics` ("train/lr", ...) on top of `base` (the chart fields)."""
    wanted = {kind: list(names) for kind, names in (base or CHART_FIELDS).items()}
    for metric in sorted(metrics):
        kind, _, name = metric.partition("/")
        if kind in METRIC_KINDS and name:
            names = wanted.setdefault(kind, ["step"])
            if name not in names:
                names.append(name)
    return {kind: tuple(names) for kind, names in wanted.items()}


@dataclass
class RunHistory:
    """Everything read from metrics.jsonl so far, in compact arrays."""

    fields: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(CHART_FIELDS))
    """The numbers read per kind: each becomes a series `metrics["kind/field"]` over steps."""
    metrics: dict[str, Series] = field(default_factory=dict)
    found: dict[str, set[str]] = field(default_factory=dict)
    """Every numeric field seen per kind (in the records read whole), read or not: what a chart may ask for."""
    train_times: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=RATE_WINDOW))
    checkpoint_records: dict[int, dict[str, Any]] = field(default_factory=dict)
    health: dict[int, HealthSummary] = field(default_factory=dict)
    """Each checkpoint's newest trustworthy read-through health record (a bad one reads as none)."""
    health_version: int = 0
    """Bumped whenever `health` changes, so the analysis and charts know to look again."""
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=200))
    start: dict[str, Any] | None = None
    last_train: dict[str, Any] | None = None
    last_val: dict[str, Any] | None = None
    alignment: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    records: int = 0

    def series(self, metric: str) -> Series:
        """The series of `metric` ("train/loss"), empty until its field is read."""
        found = self.metrics.get(metric)
        if found is None:
            found = self.metrics[metric] = Series()
        return found

    @property
    def train_loss(self) -> Series:
        return self.series("train/loss")

    @property
    def val_loss(self) -> Series:
        return self.series("val/loss")

    @property
    def train_attention(self) -> Series:
        return self.series("train/attention_score")

    @property
    def val_attention(self) -> Series:
        return self.series("val/attention_score")

    def metric_names(self) -> list[str]:
        """Every metric a chart can show: `kind/field` for the numeric fields of train and val records."""
        names = {f"{kind}/{name}" for kind, found in self.found.items() for name in found
                 if kind in METRIC_KINDS and name not in AXIS_FIELDS}
        names |= {f"{kind}/{name}" for kind, read in self.fields.items() for name in read
                  if name not in AXIS_FIELDS}
        return sorted(names, key=lambda m: (METRIC_KINDS.index(m.split("/")[0]), m))

    def _note_fields(self, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        if kind in METRIC_KINDS:
            self.found.setdefault(str(kind), set()).update(numeric_fields(record))

    def add(self, records: list[dict[str, Any]]) -> None:
        """Fold new records in; unknown kinds are ignored."""
        points: dict[str, tuple[list[float], list[float]]] = {}
        for record in records:
            kind = record.get("kind")
            step = _number(record.get("step"))
            self._note_fields(record)
            if kind in self.fields:
                for name in self.fields[str(kind)][1:]:
                    steps, values = points.setdefault(f"{kind}/{name}", ([], []))
                    steps.append(step)
                    values.append(_number(record.get(name)))
            if kind == "train":
                self.train_times.append((_number(record.get("t")), step))
                self.last_train = record
            elif kind == "val":
                self.last_val = record
            elif kind == "checkpoint":
                self.checkpoint_records[int(step)] = record
            elif kind == "alignment":
                self.alignment = record
            elif kind == "health":
                health = parse_health(record)
                if health is not None:
                    self.health[health.step] = health
                    self.health_version += 1
            elif kind == "event":
                self.events.append(record)
            elif kind == "start":
                self.start = record
                self.end = None
                self.train_times.clear()  # a resumed run's speed starts afresh
            elif kind == "end":
                self.end = record
        self.records += len(records)
        for metric, (steps, values) in points.items():
            self.series(metric).append_many(steps, values)

    def add_columns(self, new: MetricsColumns) -> None:
        """Fold in what `MetricsReader.read_new_columns(CHART_FIELDS)` returned, in file order.

        A resume's `start` record (`resumed_from` = S) supersedes what was logged past step S
        before it, as `trainer.rundir.current_history` reads it.
        """
        starts = [line for line, r in zip(new.record_lines, new.records) if r.get("kind") == "start"]
        resumes = [(line, resumed_from_step(r)) for line, r in zip(new.record_lines, new.records)
                   if resumed_from_step(r) is not None]
        if resumes:
            self._add_segments(new, resumes)
        else:
            self.add(new.records)  # the rare kinds; start records clear the rate window
            self._add_chart_columns(new, None)
        self.records += new.lines - len(new.records)
        tail = [(line, r) for line, r in zip(new.tail_lines["train"], new.tails["train"])
                if not starts or line > starts[-1]]
        self.train_times.extend((_number(r.get("t")), _number(r.get("step"))) for _, r in tail)
        for kind in METRIC_KINDS:
            for record in new.tails.get(kind, []):
                self._note_fields(record)
        if new.tails.get("train"):
            self.last_train = new.tails["train"][-1]
        if new.tails.get("val"):
            self.last_val = new.tails["val"][-1]

    def _add_chart_columns(self, new: MetricsColumns, lines: tuple[float, float] | None) -> None:
        for kind, names in self.fields.items():
            columns = new.columns.get(kind)
            if columns is None:
                continue
            if lines is not None:
                keep = (columns["line"] >= lines[0]) & (columns["line"] < lines[1])
                columns = {name: values[keep] for name, values in columns.items()}
            for name in names[1:]:
                self.series(f"{kind}/{name}").append_many(columns["step"], columns[name])

    def _add_segments(self, new: MetricsColumns, resumes: list[tuple[int, int]]) -> None:
        """Records between resumes in order, dropping what each resume supersedes."""
        begin: float = -1
        for end, resumed_from in [*resumes, (math.inf, None)]:
            self.add([r for line, r in zip(new.record_lines, new.records) if begin <= line < end])
            self._add_chart_columns(new, (begin, end))
            if resumed_from is not None:
                self.truncate_after(resumed_from)
            begin = end

    def truncate_after(self, step: int) -> None:
        """Forget what was logged past `step`."""
        for series in self.metrics.values():
            series.truncate_after(step)
        self.checkpoint_records = {s: r for s, r in self.checkpoint_records.items() if s <= step}
        if any(s > step for s in self.health):
            self.health = {s: h for s, h in self.health.items() if s <= step}
            self.health_version += 1
        self.events = deque((r for r in self.events if _number(r.get("step")) <= step), maxlen=self.events.maxlen)
        if self.alignment is not None and _number(self.alignment.get("step")) > step:
            self.alignment = None

    def steps_per_s(self) -> float | None:
        """Steps per second over the newest logged interval, train.log's `s/it` rule: between the two
        newest train records, or from the `start` record to the first one after it."""
        times = list(self.train_times)[-2:]
        if len(times) == 1 and self.start is not None:
            times.insert(0, (_number(self.start.get("t")), _number(self.start.get("step"))))
        if len(times) < 2 or not np.isfinite(np.asarray(times, dtype=np.float64)).all():
            return None
        points = np.asarray(times, dtype=np.float64)
        return rate_per_s(points[:, 0], points[:, 1])


def read_log_tail(path: Path, max_lines: int = 200, max_bytes: int = LOG_TAIL_BYTES) -> list[str]:
    """The last lines of a text file, reading at most `max_bytes` from its end."""
    raw_lines, _ = read_tail(path, max_bytes)
    text = b"\n".join(raw_lines).decode("utf-8", errors="replace")
    return text.replace("\r", "\n").splitlines()[-max_lines:]


class RunFollower:
    """Reads what a run wrote since the last poll; `poll()` says whether anything changed."""

    def __init__(self, run: RunDir | RunSource):
        self.source = as_source(run)
        """Where the run is read from: voxtop's run directory or another trainer's folder."""
        self.fields = dict(CHART_FIELDS)
        """The numbers read per kind (the chart fields, and any a chart asked for since)."""
        self.history = RunHistory(dict(self.fields))
        self.status: dict[str, Any] | None = None
        self.state = "unknown"
        self.log_lines: list[str] = []
        self._reader = self.source.metrics_reader()
        self._log_signature: tuple[int, int] | None = None
        self._lock = threading.Lock()

    @property
    def malformed(self) -> int:
        return self._reader.malformed

    def want(self, metrics: set[str] | frozenset[str]) -> bool:
        """Read the fields of `metrics` ("train/lr", "val/t", ...) too; when any is new the run is read again
        from its start on the next poll (metrics.index holds only the chart fields). True if so."""
        with self._lock:
            fields = fields_for(set(metrics), self.fields)
            if fields == self.fields:
                return False
            self.fields = fields
            self._reader = self.source.metrics_reader()
            self.history = RunHistory(dict(fields))
            return True

    def poll(self) -> bool:
        """Read new metrics bytes, the status and (if it grew) the log; True when any changed."""
        with self._lock:
            changed = False
            before = self._reader.offset
            new = self._reader.read_new_columns(self.fields, tail=RATE_WINDOW)
            if self._reader.offset < before:  # file replaced: start over
                self.history = RunHistory(dict(self.fields))
            if new.lines:
                self.history.add_columns(new)
                changed = True
            status = self.source.status()
            state = self.source.state(status)
            if status != self.status or state != self.state:
                self.status, self.state = status, state
                changed = True
            log_path = self.source.log_path
            try:
                stat = log_path.stat() if log_path is not None else None
                signature = (stat.st_size, stat.st_mtime_ns) if stat is not None else None
            except FileNotFoundError:
                signature = None
            if signature != self._log_signature:
                self._log_signature = signature
                self.log_lines = read_log_tail(log_path) if log_path is not None else []
                changed = True
            return changed


class CheckpointWatcher:
    """Calls `on_change()` when files appear or vanish in checkpoints/.

    Uses the native (inotify) observer and falls back to polling where it cannot start.
    The callback runs on the observer's thread.
    """

    def __init__(self, folder: Path, on_change: Callable[[], None]):
        self.folder = folder
        self.on_change = on_change
        self.observer: Any = None
        self.mode = "off"

    def start(self) -> str:
        """Start watching; returns "inotify"/"native", "polling" or "off" (folder missing)."""
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type in ("created", "deleted", "moved", "closed"):
                    watcher.on_change()

        if not self.folder.is_dir():
            return self.mode
        for kind, factory in (("native", Observer), ("polling", lambda: PollingObserver(timeout=2))):
            try:
                observer = factory()
                observer.schedule(Handler(), str(self.folder), recursive=False)
                observer.daemon = True
                observer.start()
            except (OSError, RuntimeError):
                continue
            self.observer, self.mode = observer, kind
            break
        return self.mode

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer = None
            self.mode = "off"
