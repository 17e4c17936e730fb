"""Run sources: what the screens and commands need from a run, behind one small interface.

The Runs screen, the Monitor, `voxtop runs`, `voxtop checkpoints`, `voxtop watch` and `voxtop
export` ask a `RunSource` for a run's status, its records (as numeric columns, by byte offset),
its checkpoints and their pictures; they never open a run's files themselves. voxtop's own run
directory (`VoxtopRun`) is the first source. A folder written by another trainer (TensorBoard
event files, its own checkpoint names) plugs in as another subclass, and `open_run` learns to
recognise it; the screens need no change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.rundir.files import regular_file_problem
from trainer.rundir.layout import CheckpointFile, RunDir, inside, list_runs, resolve_run
from trainer.rundir.names import RunError
from trainer.rundir.queries import (CheckpointTable, RunSummary, checkpoint_table, detector_config, run_summary, tail_records)
from trainer.rundir.reader import MetricsReader

if TYPE_CHECKING:
    from trainer.overtrain import DetectorConfig


class RunSource(ABC):
    """One run, wherever it came from: its status, records, checkpoints and pictures.

    Every method is cheap to call again (bounded reads, or reads of what is new), never raises
    for a missing or damaged file (it answers "none" instead), and may be called off the UI
    thread; a source holds no widget and no screen state.
    """

    @property
    @abstractmethod
    def name(self) -> str:
        """The run's name as lists show it."""

    @property
    @abstractmethod
    def path(self) -> Path:
        """The folder the run lives in."""

    @abstractmethod
    def status(self) -> dict[str, Any] | None:
        """The run's status fields (`state`, `step`, `total_steps`, `epoch`, `error`, ...), None when unknown."""

    @abstractmethod
    def state(self, status: dict[str, Any] | None = None) -> str:
        """The state a watcher shows: one of the contract's states, `stale` when its process is gone, or `unknown`."""

    @abstractmethod
    def summary(self) -> RunSummary:
        """State, progress and the newest train and val figures, each labelled."""

    @abstractmethod
    def metrics_reader(self) -> MetricsReader:
        """A reader of the run's records from the start: `read_new()` as dicts, `read_new_columns()` as
        arrays, each call costing only what was written since the last."""

    @abstractmethod
    def checkpoints(self) -> list[CheckpointFile]:
        """The finished checkpoint files, oldest first."""

    @abstractmethod
    def checkpoint_table(self, detector: DetectorConfig | None = None, sentences: bool = True) -> CheckpointTable:
        """The checkpoints newest first with val loss, health and tags, and the recommended one
        (`sentences=False`: health counts without each sentence)."""

    @abstractmethod
    def tail(self, max_bytes: int) -> tuple[list[dict[str, Any]], int]:
        """The records in the last `max_bytes` of the run's metrics, and where reading goes on after them."""

    @abstractmethod
    def picture_path(self, record: dict[str, Any], kind: str) -> Path | None:
        """The file of an `alignment` record's picture (`alignment` or `mel`), None when it names none."""


    # What a follower needs beyond the abstract methods; the defaults suit a source without them.

    @property
    def log_path(self) -> Path | None:
        """The run's text log (shown as the log panel and followed by `voxtop watch`), None when it has none."""
        return None

    @property
    def checkpoints_dir(self) -> Path | None:
        """A folder whose changes mean the checkpoint list changed (watched for files), None when unknown."""
        return None

    def detector_config(self) -> DetectorConfig:
        """The overtraining detector's settings for this run (its config's, else the defaults)."""
        from trainer.overtrain import DetectorConfig

        return DetectorConfig()

    def picture_for_step(self, step: int, kind: str) -> Path | None:
        """The picture file (`alignment` or `mel`) of the checkpoint at `step`, None when it has none."""
        return None


class RunDirSource(RunSource):
    """A source whose name, status, staleness and log are a voxtop run folder's (`RunDir`): voxtop's own
    runs, and commands started by `voxtop launch`."""

    def __init__(self, run: RunDir):
        self.run = run

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def path(self) -> Path:
        return self.run.path

    def status(self) -> dict[str, Any] | None:
        return self.run.read_status()

    def state(self, status: dict[str, Any] | None = None) -> str:
        return self.run.effective_state(status)

    @property
    def log_path(self) -> Path | None:
        return self.run.log_path


class VoxtopRun(RunDirSource):
    """A voxtop run directory (the run contract of `trainer.rundir`)."""

    def summary(self) -> RunSummary:
        return run_summary(self.run)  # reads the newest records itself: an unreadable run is listed as such

    def metrics_reader(self) -> MetricsReader:
        return MetricsReader(self.run.metrics_path)

    def checkpoints(self) -> list[CheckpointFile]:
        return self.run.checkpoints()

    def checkpoint_table(self, detector: DetectorConfig | None = None, sentences: bool = True) -> CheckpointTable:
        return checkpoint_table(self.run, detector, sentences=sentences)

    def tail(self, max_bytes: int) -> tuple[list[dict[str, Any]], int]:
        return tail_records(self.run.metrics_path, max_bytes)

    @property
    def checkpoints_dir(self) -> Path | None:
        return self.run.checkpoints_dir

    def detector_config(self) -> DetectorConfig:
        return detector_config(self.run.config_path)

    def picture_for_step(self, step: int, kind: str) -> Path | None:
        return self.run.alignment_path(step) if kind == "alignment" else self.run.mel_path(step)

    def picture_path(self, record: dict[str, Any], kind: str) -> Path | None:
        raw = record.get("path") if kind == "alignment" else record.get("mel")
        if not isinstance(raw, str) or not raw:
            return None
        path = Path(raw) if Path(raw).is_absolute() else self.run.path / raw
        # a record names a file of this run, never one elsewhere (`../`), and only a regular file is a
        # picture (one not there yet is the reader's to report)
        if not inside(self.run.path, path) or regular_file_problem(path) not in (None, "missing"):
            return None
        return path


def as_source(run: RunDir | RunSource) -> RunSource:
    """`run` as a source: a voxtop `RunDir` is wrapped, a source is returned as it is."""
    return run if isinstance(run, RunSource) else VoxtopRun(run)


def open_run(runs_root: Path, name_or_path: str) -> RunSource:
    """The run named (under `runs_root`) or given by path, as a source; RunError when there is none.

    A folder that is not a voxtop run may be another trainer's (`trainer.foreign`): RVC/Applio, Coqui TTS,
    Lightning/Piper, DLLogger or plain TensorBoard event files, or a command started by `voxtop launch`.
    """
    try:
        return VoxtopRun(resolve_run(runs_root, name_or_path))
    except RunError as not_ours:
        from trainer.foreign.sources import open_foreign

        candidate = Path(name_or_path)
        if not candidate.is_dir() and not candidate.is_absolute() and len(candidate.parts) == 1:
            candidate = Path(runs_root) / name_or_path
        if not candidate.is_dir():
            raise not_ours
        return open_foreign(candidate)


def list_sources(runs_root: Path) -> list[RunSource]:
    """Every run under `runs_root`, newest name first, as sources: voxtop's own, then the folders of
    other trainers (and of `voxtop launch`) that `trainer.foreign` recognises there."""
    from trainer.foreign.sources import foreign_sources

    ours = list_runs(runs_root)
    known = {run.path for run in ours}
    return [*(VoxtopRun(run) for run in ours), *foreign_sources(runs_root, known)]
