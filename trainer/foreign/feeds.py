"""Where a foreign run's numbers come from, read incrementally: TensorBoard event files, DLLogger JSON
lines, a Lightning `metrics.csv`. Each feed's `read_new()` returns chunks of new points per tag."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.foreign.tbevents import EventBlob, EventLog


@dataclass
class Chunk:
    """New points from one file: per tag (steps, wall times, values) arrays, and pictures or clips.

    `origin` names the file: a chunk from another file than a tag's previous one whose steps start
    at or below that tag's last step is a restart, and supersedes what was logged from there on.
    `reset` says the file was rewritten from the start, so everything read from it before is void.
    """

    origin: str
    scalars: dict[str, tuple[Any, Any, Any]] = field(default_factory=dict)
    blobs: list[EventBlob] = field(default_factory=list)
    reset: bool = False


class TensorBoardFeed:
    """Every event file under the logdir (restarts, `eval/` and other subfolders)."""

    def __init__(self, folder: Path):
        self.log = EventLog(folder)

    @property
    def corrupt(self) -> int:
        return self.log.corrupt

    def read_new(self) -> list[Chunk]:
        return [Chunk(str(path), batch.scalars, batch.blobs) for path, batch in self.log.read_new()]


class DLLoggerFeed:
    """NVIDIA DLLogger's JSON lines (`DLLL {...}`): `step` is an int, or [epoch, iteration] for a train
    log and [epoch] for an epoch's (validation) log; a running count of iterations is the step."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.corrupt = 0
        self._partial = b""
        self._iterations = 0

    def read_new(self) -> list[Chunk]:
        import numpy as np

        try:
            with open(self.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < self.offset:
                    self.offset, self._partial, self._iterations = 0, b"", 0
                handle.seek(self.offset)
                data = handle.read(size - self.offset)
        except OSError:
            return []
        self.offset += len(data)
        complete, _, self._partial = (self._partial + data).rpartition(b"\n")
        points: dict[str, tuple[list[int], list[float], list[float]]] = {}
        for line in complete.split(b"\n"):
            if not line.strip():
                continue
            entry = self._parse(line)
            if entry is None:
                continue
            step, wall, values = entry
            for tag, value in values.items():
                steps, walls, numbers = points.setdefault(tag, ([], [], []))
                steps.append(step)
                walls.append(wall)
                numbers.append(value)
        if not points:
            return []
        scalars = {tag: (np.asarray(s, dtype=np.int64), np.asarray(w, dtype=np.float64),
                         np.asarray(v, dtype=np.float64)) for tag, (s, w, v) in points.items()}
        return [Chunk(str(self.path), scalars)]

    def _parse(self, line: bytes) -> tuple[int, float, dict[str, float]] | None:
        text = line.strip()
        if text.startswith(b"DLLL "):
            text = text[5:]
        try:
            entry = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError):
            self.corrupt += 1
            return None
        if not isinstance(entry, dict) or entry.get("type") != "LOG" or not isinstance(entry.get("data"), dict):
            return None
        step = entry.get("step")
        if isinstance(step, list) and len(step) >= 2:
            self._iterations += 1
            at = self._iterations
        elif isinstance(step, int) and not isinstance(step, bool):
            at = self._iterations = max(self._iterations, step)
        elif isinstance(step, list) and len(step) == 1:
            at = self._iterations
        else:
            return None  # PARAMETER lines and summaries (step []) are not points of a curve
        wall = entry.get("elapsedtime")
        wall = float(entry.get("timestamp") or 0.0) if not isinstance(wall, (int, float)) else float(wall)
        values = {str(key): float(value) for key, value in entry["data"].items()
                  if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)}
        return at, wall, values


class CsvFeed:
    """PyTorch Lightning's CSVLogger `metrics.csv` (rewritten whole at each save): a row per logged step."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.corrupt = 0
        self._signature: tuple[int, int] | None = None
        self._rows = 0

    def read_new(self) -> list[Chunk]:
        import numpy as np

        try:
            stat = self.path.stat()
            signature = (stat.st_size, stat.st_mtime_ns)
            if signature == self._signature:
                return []
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        self._signature = signature
        rows = list(csv.DictReader(io.StringIO(text)))
        if text and not text.endswith("\n"):
            rows = rows[:-1]  # a row being written
        reset = len(rows) < self._rows
        start = 0 if reset else self._rows
        self._rows = len(rows)
        points: dict[str, tuple[list[int], list[float], list[float]]] = {}
        for row in rows[start:]:
            try:
                step = int(float(row.get("step") or 0))
            except ValueError:
                self.corrupt += 1
                continue
            for tag, raw in row.items():
                if tag in ("step", None) or raw in ("", None):
                    continue
                try:
                    value = float(raw)
                except (TypeError, ValueError):
                    continue
                steps, walls, numbers = points.setdefault(tag, ([], [], []))
                steps.append(step)
                walls.append(stat.st_mtime)
                numbers.append(value)
        scalars = {tag: (np.asarray(s, dtype=np.int64), np.asarray(w, dtype=np.float64),
                         np.asarray(v, dtype=np.float64)) for tag, (s, w, v) in points.items()}
        return [Chunk(str(self.path), scalars, reset=reset)] if scalars or reset else []


def open_feed(kind: str, folder: Path, metrics_file: Path | None) -> Any:
    """The feed of a layout's metrics (`tensorboard`, `dllogger`, `csv`)."""
    if kind == "dllogger" and metrics_file is not None:
        return DLLoggerFeed(metrics_file)
    if kind == "csv" and metrics_file is not None:
        return CsvFeed(metrics_file)
    return TensorBoardFeed(folder)
