"""Other trainers' run folders as run sources: the screens and commands read them as voxtop's own runs.

`ForeignRun` answers `RunSource`'s questions from a recognised layout (`trainer.foreign.layouts`):
status from how recently the trainer wrote, records from its logs (`ForeignMetricsReader`),
checkpoints from its file names, pictures from its event files' images. Its analysis follows what
that trainer's users do by hand: the overtraining verdict on the tag they watch, the local minima
of the tag they read minima from, the checkpoint nearest each minimum, and as the recommended
checkpoint the one at the lowest minimum whose checkpoint is still on disk (`trainer.overtrain`
decides, as for voxtop's runs). Checkpoints are never loaded.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.foreign.checkpoints import find_checkpoints
from trainer.foreign.feeds import open_feed
from trainer.foreign.history import ForeignHistory, ForeignMetricsReader, blob_ref, cache_folder, picture_matrix
from trainer.foreign.layouts import Layout, recognise
from trainer.foreign.tbevents import blobs_at
from trainer.rundir.layout import CheckpointFile
from trainer.rundir.names import STALE_AFTER_S, RunError
from trainer.rundir.queries import CheckpointRow, CheckpointTable, RunSummary
from trainer.rundir.reader import MetricsReader
from trainer.rundir.source import RunSource

if TYPE_CHECKING:
    from trainer.overtrain import DetectorConfig, Verdict


#: Seconds a foreign run's status is kept before it is read again (voxtop's trainer writes its own every 5 s).
STATUS_EVERY_S = 5.0


@dataclass(frozen=True)
class Minimum:
    """A local minimum of the watched tag, and the checkpoint on disk saved nearest it (None when none is near)."""

    step: int
    value: float
    checkpoint_step: int | None


@dataclass
class ForeignAnalysis:
    """What voxtop concludes from a foreign run: verdict, minima with checkpoints, the recommended one."""

    verdict_tag: str | None
    minima_tag: str | None
    verdict: Verdict | None
    minima: list[Minimum] = field(default_factory=list)
    recommended: int | None = None
    recommended_reason: str | None = None
    checkpoint_values: dict[int, float | None] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"verdict_tag": self.verdict_tag, "minima_tag": self.minima_tag,
                "verdict": asdict(self.verdict) if self.verdict is not None else None,
                "minima": [asdict(m) for m in self.minima], "recommended": self.recommended,
                "recommended_reason": self.recommended_reason}


def _value_near(steps: Any, values: Any, step: int) -> float | None:
    """The logged value at the step nearest `step` (ties: the earlier), None with no points."""
    import numpy as np

    if not len(steps):
        return None
    at = int(np.searchsorted(steps, step))
    nearby = [k for k in (at - 1, at) if 0 <= k < len(steps)]
    best = min(nearby, key=lambda k: (abs(int(steps[k]) - step), k))
    value = float(values[best])
    return value if math.isfinite(value) else None


def nearest_checkpoint(step: int, saved: list[int], within: float) -> int | None:
    """The saved step nearest `step` (ties: the earlier) if it is within `within` steps of it."""
    if not saved:
        return None
    best = min(saved, key=lambda s: (abs(s - step), s))
    return best if abs(best - step) <= within else None


def analyse_series(verdict_steps: Any, verdict_values: Any, minima_steps: Any, minima_values: Any,
                   checkpoint_steps: list[int], verdict_smoothing: float, minima_smoothing: float,
                   detector: DetectorConfig | None = None) -> tuple[Verdict | None, list[Minimum], int | None, str | None,
                                                                    dict[int, float | None]]:
    """(verdict, minima, recommended step, why, value of the minima tag at each checkpoint) of two series.

    A minimum is tied to the checkpoint nearest it when that one lies within half the usual spacing of
    the checkpoints (the one saved at it; a deleted one is not stood in for by a neighbour); the recommended checkpoint is
    `trainer.overtrain.recommend` over those tied checkpoints, each valued at its minimum, so the lowest
    minimum still on disk wins; with none tied, over every checkpoint valued at its own step.
    """
    import numpy as np

    from trainer.overtrain import Detector, DetectorConfig, Evaluation, local_minima, recommend

    base = detector or DetectorConfig()
    verdict = None
    if len(verdict_steps):
        judge = Detector(DetectorConfig(**{**base.__dict__, "smoothing": verdict_smoothing}))
        for step, value in zip(np.asarray(verdict_steps).tolist(), np.asarray(verdict_values).tolist()):
            verdict = judge.update(Evaluation(int(step), float(value)))
    saved = sorted(checkpoint_steps)
    spacing = float(np.median(np.diff(saved))) if len(saved) > 1 else math.inf
    minima = []
    steps_list = np.asarray(minima_steps).tolist()
    values_list = np.asarray(minima_values, dtype=np.float64).tolist()
    for k in local_minima(steps_list, values_list, base.prominence, minima_smoothing):
        minima.append(Minimum(int(steps_list[k]), values_list[k],
                              nearest_checkpoint(int(steps_list[k]), saved, spacing / 2)))
    values = {step: _value_near(np.asarray(minima_steps), np.asarray(minima_values), step) for step in saved}
    at_minima: dict[int, float | None] = {}
    for minimum in minima:
        if minimum.checkpoint_step is not None:
            held = at_minima.get(minimum.checkpoint_step)
            at_minima[minimum.checkpoint_step] = minimum.value if held is None else min(held, minimum.value)
    if at_minima:
        recommended = recommend(at_minima)
        step_of = min((m for m in minima if m.checkpoint_step == recommended), key=lambda m: m.value)
        reason = f"nearest the lowest minimum still on disk (step {step_of.step}, {step_of.value:.4g})"
    else:
        recommended = recommend(values)
        reason = "lowest value at its step (no minimum has a checkpoint near it)" if recommended is not None else None
    return verdict, minima, recommended, reason, values


class ForeignRun(RunSource):
    """A folder written by another trainer (RVC/Applio, Coqui TTS, Lightning/Piper, DLLogger, TensorBoard)."""

    def __init__(self, layout: Layout, name: str | None = None):
        self.layout = layout
        self._name = name or self._default_name(layout.folder)
        self._reader: ForeignMetricsReader | None = None
        self._status: dict[str, Any] | None = None
        self._status_at = -math.inf
        self._summary: RunSummary | None = None
        self._summary_at = -math.inf

    @staticmethod
    def _default_name(folder: Path) -> str:
        if folder.name.startswith("version_") and folder.parent.name == "lightning_logs":
            return f"{folder.parent.parent.name}/{folder.name}"
        return folder.name

    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> Path:
        return self.layout.folder

    # --- reading ----------------------------------------------------------------------------

    def _new_reader(self) -> ForeignMetricsReader:
        layout = self.layout
        return ForeignMetricsReader(layout, lambda: open_feed(layout.metrics, layout.folder, layout.metrics_file))

    def history(self) -> ForeignHistory:
        """Every tag read so far, brought up to date (each call reads only what is new)."""
        if self._reader is None:
            self._reader = self._new_reader()
        self._reader.poll()
        return self._reader.history

    def metrics_reader(self) -> MetricsReader:
        return self._new_reader()

    def _written_at(self) -> float | None:
        """When the trainer last wrote its metrics (the newest of its metrics files)."""
        newest = None
        if self.layout.metrics_file is not None:
            paths = [self.layout.metrics_file]
        else:
            reader = self._reader
            paths = list(reader._feed.log.readers) if reader is not None and hasattr(reader._feed, "log") else []
        for path in paths:
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            newest = mtime if newest is None else max(newest, mtime)
        return newest

    def status(self) -> dict[str, Any] | None:
        """State, newest step and what was read, like a status.json; read again at most every STATUS_EVERY_S
        (a Monitor asks every second, and its own reader follows the logs already)."""
        now = time.monotonic()
        if self._status is not None and now - self._status_at < STATUS_EVERY_S:
            return self._status
        history = self.history()
        self._status, self._status_at = {
            "state": self.state(), "step": history.last_step(), "epoch": 0, "total_steps": 0,
            "updated_at": self._written_at(), "trainer": self.layout.label, "layout": self.layout.kind,
            "tags": history.tags(), "corrupt_records": self._reader.corrupt if self._reader else 0}, now
        return self._status

    def state(self, status: dict[str, Any] | None = None) -> str:
        """`running` while the trainer wrote its logs in the last minute, else `unknown` (voxtop did not start
        it, so it cannot tell a finished run from a stopped one)."""
        if self._reader is None:
            self.history()
        written = self._written_at()
        return "running" if written is not None and time.time() - written < STALE_AFTER_S else "unknown"

    def summary(self) -> RunSummary:
        """The run at a glance, read again at most every STATUS_EVERY_S (the Runs screen asks every 2 s)."""
        now = time.monotonic()
        if self._summary is not None and now - self._summary_at < STATUS_EVERY_S:
            return self._summary
        self._summary, self._summary_at = self._read_summary(), now
        return self._summary

    def _read_summary(self) -> RunSummary:
        history = self.history()
        train, val = history.train_tag(), history.verdict_tag()

        def last(tag: str | None) -> float | None:
            if tag is None:
                return None
            _, _, values = history.series[tag].view()
            return float(values[-1]) if len(values) and math.isfinite(values[-1]) else None

        walls = [float(s.view()[1][0]) for s in history.series.values() if s.count and s.view()[1][0] > 1e9]
        return RunSummary(name=self.name, path=self.path, state=self.state(), step=history.last_step(),
                          total_steps=0, epoch=0, train_loss=last(train), val_loss=last(val) if val != train else None,
                          val_attention=None, started_at=min(walls) if walls else None, error=None,
                          checkpoints=len(self.checkpoints()))

    def checkpoints(self) -> list[CheckpointFile]:
        history = self._reader.history if self._reader is not None else self.history()
        return find_checkpoints(list(self.layout.checkpoint_folders), self.layout.is_checkpoint,
                                history.step_at_time, self.layout.prefers)

    def analysis(self, tag: str | None = None, detector: DetectorConfig | None = None) -> ForeignAnalysis:
        """The verdict on `tag` (default: the tag this trainer's users watch), minima, the recommended checkpoint."""
        history = self.history()
        verdict_tag = tag if tag in history.series else history.verdict_tag()
        minima_tag = tag if tag in history.series else history.minima_tag()
        watched = self.layout.watched
        smoothing = watched.verdict_smoothing if tag is None else (detector.smoothing if detector else 0.6)
        minima_smoothing = watched.minima_smoothing if tag is None else smoothing
        empty: tuple[Any, Any, Any] = ((), (), ())
        verdict_series = history.series[verdict_tag].view() if verdict_tag else empty
        minima_series = history.series[minima_tag].view() if minima_tag else empty
        steps = [c.step for c in self.checkpoints()]
        verdict, minima, recommended, reason, values = analyse_series(
            verdict_series[0], verdict_series[2], minima_series[0], minima_series[2], steps, smoothing,
            minima_smoothing, detector)
        return ForeignAnalysis(verdict_tag, minima_tag, verdict, minima, recommended, reason, values)

    def checkpoint_table(self, detector: DetectorConfig | None = None, sentences: bool = True) -> CheckpointTable:
        files = self.checkpoints()
        analysis = self.analysis(detector=detector)
        tied = {m.checkpoint_step for m in analysis.minima if m.checkpoint_step is not None}
        rows = []
        for checkpoint in reversed(files):
            tags = (["recommended"] if checkpoint.step == analysis.recommended else []) \
                + (["minimum"] if checkpoint.step in tied else [])
            rows.append(CheckpointRow(checkpoint.step, checkpoint.path, checkpoint.mtime, checkpoint.size,
                                      analysis.checkpoint_values.get(checkpoint.step), None, tags))
        return CheckpointTable(rows, analysis.recommended, analysis.recommended_reason)

    @property
    def config_path(self) -> Path:
        """Where a voxtop run keeps its config.toml; another trainer's folder has none, so readers of it
        (the detector's settings) fall back to their defaults."""
        return self.path / "config.toml"

    def live_analysis(self) -> ForeignLiveAnalysis:
        """What the Monitor analyses this run with (in place of voxtop's val-loss analysis)."""
        return ForeignLiveAnalysis(self)

    @property
    def log_path(self) -> Path | None:
        """The trainer's own text log where it keeps one in the run folder (Coqui's trainer_0_log.txt)."""
        return self.layout.log_file

    @property
    def checkpoints_dir(self) -> Path | None:
        return self.layout.checkpoint_folders[0] if self.layout.checkpoint_folders else None

    def detector_config(self) -> DetectorConfig:
        """The detector's defaults with the smoothing this trainer's users set on the watched tag."""
        from trainer.overtrain import DetectorConfig

        return DetectorConfig(smoothing=self.layout.watched.verdict_smoothing)

    def picture_for_step(self, step: int, kind: str) -> Path | None:
        """The picture logged at `step` (a checkpoint's), or at the newest step before it that has one."""
        history = self._reader.history if self._reader is not None else self.history()
        logged = sorted({s for (_, s), blob in history.blobs.items() if blob.kind == "image" and s <= step})
        if not logged:
            return None
        at = logged[-1]
        tags = sorted(tag for (tag, s), blob in history.blobs.items() if s == at and blob.kind == "image")
        wanted = [t for t in tags if ("align" in t.lower()) == (kind == "alignment")] or tags
        chosen = next((t for t in wanted if "gen" in t.lower()), wanted[0])
        ref = f"tensorboard:{chosen}@{at}"
        return self.picture_path({"path": ref, "mel": ref}, kind)

    def tail(self, max_bytes: int) -> tuple[list[dict[str, Any]], int]:
        """The newest records, about as many as `max_bytes` of voxtop's metrics would hold (200 bytes each)."""
        reader = self._new_reader()
        records = reader.read_new()
        return records[-max(1, max_bytes // 200):], 0

    def picture_path(self, record: dict[str, Any], kind: str) -> Path | None:
        """The image an `alignment` record names (`alignment`: its `path`, `mel`: its `mel`, `wav`: its clip),
        made into a file under voxtop's cache: a picture as a .npy array, a clip as the .wav it was."""
        key = {"alignment": "path", "mel": "mel", "wav": "wav"}.get(kind, "path")
        found = blob_ref(record.get(key))
        if found is None:
            return None
        tag, step = found
        history = self._reader.history if self._reader is not None else self.history()
        blob = history.blobs.get((tag, step))
        if blob is None:
            return None
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in tag)
        suffix = ".wav" if blob.kind == "audio" else f".{kind}.npy"
        out = cache_folder(self.path) / safe / f"step-{step:08d}{suffix}"
        if out.is_file():
            return out
        data = blob.data
        if not data and blob.offset >= 0:  # the reader keeps no image data: read its record again
            data = next((b.data for b in blobs_at(Path(blob.file), blob.offset)
                         if b.step == step and (b.tag == tag or tag.endswith("/" + b.tag))), b"")
        if not data:
            return None
        import numpy as np

        from trainer.rundir.atomic import atomic_write_bytes

        out.parent.mkdir(parents=True, exist_ok=True)
        if blob.kind == "audio":
            atomic_write_bytes(out, data)
            return out
        try:
            matrix = picture_matrix(data)
        except (OSError, ValueError):
            return None
        import io

        buffer = io.BytesIO()
        np.save(buffer, matrix.T if kind == "alignment" else matrix, allow_pickle=False)
        atomic_write_bytes(out, buffer.getvalue())
        return out


def open_foreign(path: Path) -> RunSource:
    """The run of another trainer in `path` (or of `voxtop launch`); RunError when voxtop recognises none there."""
    from trainer.foreign.launched import LaunchedRun, read_launch
    from trainer.rundir.layout import RunDir

    spec = read_launch(Path(path))
    if spec is not None:
        return LaunchedRun(RunDir(Path(path)), spec)
    layout = recognise(Path(path))
    if layout is None:
        raise RunError(f"{path} is neither a voxtop run (no config.toml) nor a folder of a trainer voxtop reads "
                       "(TensorBoard event files, RVC/Applio, Coqui TTS, Lightning, DLLogger)")
    return ForeignRun(layout)


def foreign_sources(root: Path, skip: set[Path] | frozenset[Path] = frozenset()) -> list[RunSource]:
    """The folders directly under `root` (but those in `skip`) that another trainer wrote, newest name first."""
    try:
        entries = sorted((e for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")),
                         key=lambda e: e.name, reverse=True)
    except OSError:
        return []
    from trainer.foreign.launched import LaunchedRun, read_launch
    from trainer.rundir.layout import RunDir

    found: list[RunSource] = []
    for entry in entries:
        path = Path(entry.path)
        if path in skip:
            continue
        spec = read_launch(path)
        if spec is not None:
            found.append(LaunchedRun(RunDir(path), spec))
            continue
        layout = recognise(path)
        if layout is not None:
            found.append(ForeignRun(layout))
    return found


class ForeignLiveAnalysis:
    """The Monitor's live analysis of another trainer's run: `analysis()` of its source (the verdict on the
    watched tag, the minima of the minima tag, the checkpoint at the best minimum still on disk), in the
    shape of `tui.run_analysis.LiveAnalysis.result`, so the Monitor's table, chart marks and verdict line
    say what `voxtop checkpoints` says. Recomputed when the evaluations or checkpoints change, at most every
    `min_interval_s` for new evaluations alone (a long run replays its whole series; TensorBoard reloads
    every 30 s)."""

    def __init__(self, source: Any, min_interval_s: float = 30.0):
        self.source = source
        self.min_interval_s = min_interval_s
        self.result: dict[str, Any] = {"verdict": None, "minima": [], "onset_step": None, "candidates": [],
                                       "recommended": None, "recommended_reason": None, "tags": {}}
        self._key: tuple[Any, ...] | None = None
        self._at = -math.inf

    def update(self, train_loss: Any, val_loss: Any, val_attention: Any, checkpoint_records: Any,
               existing: set[int], health: Any = None) -> dict[str, Any]:
        from dataclasses import asdict

        key = (val_loss.count, val_loss.version, frozenset(existing))
        now = time.monotonic()
        if key == self._key or (self._key is not None and key[2] == self._key[2]
                                and now - self._at < self.min_interval_s):
            return self.result
        self._key, self._at = key, now
        analysis = self.source.analysis()
        if analysis is None:
            return self.result
        verdict = analysis.verdict
        tags: dict[int, list[str]] = {}
        for minimum in analysis.minima:
            if minimum.checkpoint_step is not None:
                tags.setdefault(minimum.checkpoint_step, []).append("minimum")
        if analysis.recommended is not None:
            tags.setdefault(analysis.recommended, []).insert(0, "recommended")
        self.result = {
            "verdict": asdict(verdict) if verdict is not None else None,
            "minima": [m.step for m in analysis.minima],
            "onset_step": verdict.onset_step if verdict is not None and verdict.verdict == "overtraining" else None,
            "candidates": [{"step": m.step, "val_loss": m.value, "checkpoint_step": m.checkpoint_step,
                            "checkpoint_val_loss": analysis.checkpoint_values.get(m.checkpoint_step)
                            if m.checkpoint_step is not None else None} for m in analysis.minima],
            "recommended": analysis.recommended, "recommended_reason": analysis.recommended_reason,
            "tags": {step: found for step, found in sorted(tags.items())}}
        return self.result
