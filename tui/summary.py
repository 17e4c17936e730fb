"""One-line summaries of runs (Runs screen) and launch estimates (Parameters screen).

Cheap by design: the summaries are `trainer.rundir.queries.run_summary` (status.json plus
the newest records, read back from the end of metrics.jsonl), cached by the file's size and
mtime so that an idle run costs one stat per refresh.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.rundir import RunDir, finite, list_runs
from trainer.rundir.queries import RunSummary, newest_records, run_summary, tail_records
from trainer.rundir.names import hms

__all__ = ["CHECKPOINT_BYTES", "PresetReference", "RunSummary", "RunsIndex", "estimate", "format_bytes", "format_eta",
           "preset_reference"]
#: Bytes of one checkpoint when no earlier run of the preset has one: the weights and Adam's two
#: moments, 12 bytes a parameter (tiny: 0.81 M parameters, full: 28.3 M), plus a little state.
CHECKPOINT_BYTES = {"tiny": 9 * 2**20, "full": 340 * 2**20}


class RunsIndex:
    """Summaries of every run under a folder (`trainer.rundir.queries.run_summary`), re-reading a
    run's newest records only when its metrics file changed."""

    def __init__(self, runs_root: Path):
        self.runs_root = Path(runs_root)
        self._newest: dict[Path, tuple[tuple[int, int], dict[str, dict[str, Any]]]] = {}
        self._foreign: dict[Path, Any] = {}  # other trainers' runs and launched commands: kept, so each refresh
        # reads only what their logs gained

    def _newest_records(self, run: RunDir) -> dict[str, dict[str, Any]]:
        try:
            stat = run.metrics_path.stat()
            signature = (stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError:
            return {}
        cached = self._newest.get(run.path)
        if cached and cached[0] == signature:
            return cached[1]
        newest = newest_records(run.metrics_path)
        self._newest[run.path] = (signature, newest)
        return newest

    def summary(self, run: RunDir) -> RunSummary:
        """The run's summary, as `voxtop runs` gives it."""
        return run_summary(run, self._newest_records(run))

    def refresh(self) -> list[RunSummary]:
        """Every run's summary, newest run first."""
        runs = list_runs(self.runs_root)
        alive = {run.path for run in runs}
        self._newest = {path: value for path, value in self._newest.items() if path in alive}
        return [self.summary(run) for run in runs] + self._foreign_summaries(alive)

    def _foreign_summaries(self, skip: set[Path]) -> list[RunSummary]:
        """The summaries of the folders other trainers (or `voxtop launch`) wrote in the runs folder."""
        try:  # only voxtop's runs there (the common case): no reader of other trainers' folders to import
            others = any(entry.is_dir() and not entry.name.startswith(".") and Path(entry.path) not in skip
                         for entry in os.scandir(self.runs_root))
        except OSError:
            others = False
        if not others:
            self._foreign = {}
            return []
        from trainer.foreign.sources import foreign_sources

        kept = {}
        for source in foreign_sources(self.runs_root, skip):
            held = self._foreign.get(source.path)
            kept[source.path] = held if held is not None and type(held) is type(source) else source
        self._foreign = kept
        return [source.summary() for source in kept.values()]


def source_at(path: Path) -> Any:
    """The run in `path` as the screens open it: voxtop's run directory, else another trainer's folder or a
    command started by `voxtop launch` (`trainer.foreign`), as its run source."""
    path = Path(path)
    if (path / "config.toml").is_file():
        return RunDir(path)
    from trainer.foreign.sources import open_foreign

    return open_foreign(path)


def is_voxtop_run(path: Path) -> bool:
    """Whether `path` is a voxtop run (resumable by voxtop's trainer), not another trainer's folder."""
    return (Path(path) / "config.toml").is_file()


# --- estimates -----------------------------------------------------------------------


@dataclass(frozen=True)
class PresetReference:
    """What earlier runs of one preset tell about the next: checkpoint size and speed."""

    checkpoint_bytes: int | None = None
    steps_per_s: float | None = None
    source: str | None = None


def _preset_of(run: RunDir) -> str | None:
    if sys.version_info >= (3, 11):  # imported here, in the worker that needs it, not at start
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(run.config_path.read_text(encoding="utf-8")).get("model", {}).get("preset")
    except (OSError, ValueError):
        return None


def _speed(run: RunDir) -> float | None:
    """Steps per second over the train records of the run's latest session."""
    try:
        tail, _ = tail_records(run.metrics_path)
    except OSError:
        return None
    records = [r for r in tail if r.get("kind") in ("start", "train")]
    points: list[tuple[float, float]] = []
    for record in records:
        if record.get("kind") == "start":
            points = []
        else:
            t, step = finite(record.get("t")), finite(record.get("step"))
            if t is not None and step is not None:
                points.append((t, step))
    if len(points) < 2 or points[-1][0] <= points[0][0] or points[-1][1] <= points[0][1]:
        return None
    return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])


def preset_reference(runs_root: Path, preset: str) -> PresetReference:
    """Checkpoint size and speed of the newest earlier run of `preset` that has them."""
    size, speed, source = None, None, None
    for run in list_runs(runs_root):
        if _preset_of(run) != preset:
            continue
        if size is None:
            checkpoints = run.checkpoints()
            if checkpoints:
                size, source = checkpoints[-1].size, source or run.name
        if speed is None:
            speed = _speed(run)
            if speed is not None:
                source = source or run.name
        if size is not None and speed is not None:
            break
    return PresetReference(size, speed, source)


def format_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"  # pragma: no cover


def format_eta(seconds: float | None) -> str:
    """h:mm:ss, or '?' when unknown (`trainer.rundir.names.hms`, as train.log writes it)."""
    return hms(seconds)


def estimate(clips: int, val_fraction: float, fraction: float, batch_size: int, epochs: int,
             max_steps: int, max_to_keep: int, keep_best: int, checkpoint_every: int,
             preset: str, reference: PresetReference) -> dict[str, str]:
    """Steps per epoch, total steps, disk for kept checkpoints and time, as display strings."""
    used = max(1, round(clips * fraction))
    train_clips = max(1, used - max(1, round(used * val_fraction)) if val_fraction > 0 else used)
    per_epoch = math.ceil(train_clips / max(1, batch_size))
    total = per_epoch * epochs
    if max_steps:
        total = min(total, max_steps)
    one = reference.checkpoint_bytes or CHECKPOINT_BYTES.get(preset, CHECKPOINT_BYTES["full"])
    written = total // checkpoint_every + 1 if checkpoint_every else 1
    kept = written if max_to_keep == 0 else min(written, max_to_keep + keep_best)
    guess = "" if reference.checkpoint_bytes else " (typical size)"
    if reference.steps_per_s:
        time_text = f"{format_eta(total / reference.steps_per_s)} at {reference.steps_per_s:.2f} steps/s"
    else:
        time_text = "measured after launch"
    return {"train clips": f"≈{train_clips}", "steps/epoch": str(per_epoch), "total steps": str(total),
            "disk": f"≈{format_bytes(one * kept)} ({kept} x {format_bytes(one)}{guess})",
            "time": time_text}
