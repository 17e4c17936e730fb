"""The layout of a run directory: its paths, its checkpoints, and the runs under a folder."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from trainer.rundir.atomic import atomic_write_text
from trainer.rundir.names import (CHECKPOINT_RE, CONFIG_FILE, LOCK_FILE, LOG_FILE, METRICS_FILE, STATUS_FILE,
                                  TEMP_MARK, RunError, new_run_name, step_file_name)
from trainer.rundir.status import RunStatus


@dataclass(frozen=True)
class CheckpointFile:
    """A finished checkpoint file: its step, path, modification time and size in bytes."""

    step: int
    path: Path
    mtime: float
    size: int


@dataclass
class RunDir(RunStatus):
    """Paths of one run directory, its checkpoints, and (from `RunStatus`) its status and lock."""

    path: Path
    _lock_handle: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def name(self) -> str:
        """The run's folder name."""
        return self.path.name

    config_path = property(lambda self: self.path / CONFIG_FILE)
    status_path = property(lambda self: self.path / STATUS_FILE)
    metrics_path = property(lambda self: self.path / METRICS_FILE)
    log_path = property(lambda self: self.path / LOG_FILE)
    lock_path = property(lambda self: self.path / LOCK_FILE)
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    alignments_dir = property(lambda self: self.path / "alignments")
    mels_dir = property(lambda self: self.path / "mels")
    samples_dir = property(lambda self: self.path / "samples")
    health_dir = property(lambda self: self.path / "health")

    def checkpoint_path(self, step: int) -> Path:
        """checkpoints/step-<step>.pt."""
        return self.checkpoints_dir / step_file_name(step, ".pt")

    def alignment_path(self, step: int) -> Path:
        """alignments/step-<step>.npy: the attention matrix of the alignment sentence."""
        return self.alignments_dir / step_file_name(step, ".npy")

    def mel_path(self, step: int) -> Path:
        """mels/step-<step>.npy: the predicted mel of the alignment sentence."""
        return self.mels_dir / step_file_name(step, ".npy")

    def sample_path(self, step: int) -> Path:
        """samples/step-<step>.wav: Griffin-Lim audio of the alignment sentence."""
        return self.samples_dir / step_file_name(step, ".wav")

    def health_folder(self, step: int) -> Path:
        """Renderings of the held-out sentences for one checkpoint: `<nn>.wav`, `<nn>.npy` (alignment)."""
        return self.health_dir / step_file_name(step, "")

    def health_result_path(self, step: int) -> Path:
        """The health worker's result for one checkpoint, until the trainer records it in metrics.jsonl."""
        return self.health_dir / step_file_name(step, ".json")

    def resolve_checkpoint(self, requested: str | None) -> Path | None:
        """A checkpoint named by path (or relative to the run), else the newest; RunError if missing."""
        if not requested:
            existing = self.checkpoints()
            return existing[-1].path if existing else None
        path = Path(requested)
        if not path.is_file():
            path = self.path / requested
        if not path.is_file():
            raise RunError(f"checkpoint {requested} does not exist (voxtop checkpoints {self.name} lists them)")
        return path

    def make_folders(self) -> None:
        """Create checkpoints/, alignments/, mels/ and samples/."""
        for folder in (self.checkpoints_dir, self.alignments_dir, self.mels_dir, self.samples_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def remove_temp_files(self) -> list[Path]:
        """Delete the half-written temp files a killed trainer left in the run's folders.

        Only the trainer writes checkpoints/, alignments/, mels/ and samples/, and only the
        holder of the run's lock trains: call this with the lock held.
        """
        removed = []
        for folder in (self.checkpoints_dir, self.alignments_dir, self.mels_dir, self.samples_dir):
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                if entry.name.startswith(".") and TEMP_MARK in entry.name and entry.is_file(follow_symlinks=False):
                    Path(entry.path).unlink(missing_ok=True)
                    removed.append(Path(entry.path))
        return removed

    def checkpoints(self) -> list[CheckpointFile]:
        """Finished checkpoints, oldest first; temp files never match."""
        found = []
        try:
            entries = list(os.scandir(self.checkpoints_dir))
        except FileNotFoundError:
            return []
        for entry in entries:
            match = CHECKPOINT_RE.match(entry.name)
            if not match:
                continue
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue
            found.append(CheckpointFile(int(match.group(1)), Path(entry.path), stat.st_mtime, stat.st_size))
        return sorted(found, key=lambda c: c.step)

    # status -------------------------------------------------------------------------


def create_run(runs_root: Path, prefix: str, config_text: str, now: datetime | None = None,
               status: dict[str, Any] | None = None) -> RunDir:
    """A new run directory with its config.toml (and `status`, if given); never reuses an existing folder.

    All or nothing: when a write fails (a full disk, a read-only folder), what was made is removed,
    so no run folder without a config is left behind.
    """
    runs_root = Path(runs_root)
    base = new_run_name(prefix, now)  # a name refused before anything is made
    runs_root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        name = base if attempt == 0 else f"{base}-{attempt}"
        path = runs_root / name
        try:
            path.mkdir()
        except FileExistsError:
            continue
        run = RunDir(path)
        try:
            run.make_folders()
            atomic_write_text(run.config_path, config_text)
            if status is not None:
                run.write_status(**status)
        except BaseException:
            remove_new_run(run)
            raise
        return run
    raise RunError(f"could not find a free run name for {base!r} in {runs_root}")


def remove_new_run(run: RunDir) -> None:
    """Remove a run folder this process has just made and nothing has trained in (a half-made start)."""
    shutil.rmtree(run.path, ignore_errors=True)


def resolve_run(runs_root: Path, name_or_path: str) -> RunDir:
    """A run given by folder path or by name inside `runs_root`; RunError if there is none."""
    candidate = Path(name_or_path)
    if not candidate.is_dir() and not candidate.is_absolute() and len(candidate.parts) == 1:
        candidate = Path(runs_root) / name_or_path
    if not (candidate / CONFIG_FILE).is_file():
        raise RunError(f"{name_or_path} is not a voxtop run (no config.toml in {candidate})")
    return RunDir(candidate)


def list_runs(runs_root: Path) -> list[RunDir]:
    """Run directories under `runs_root`, newest name first.

    A folder that cannot be looked into is listed too (its summary says it is unreadable): a run
    whose permissions went wrong must show up, not vanish.
    """
    try:
        entries = [e for e in os.scandir(runs_root) if e.is_dir() and not e.name.startswith(".")]
    except FileNotFoundError:
        return []
    runs = [RunDir(Path(e.path)) for e in entries if os.path.exists(os.path.join(e.path, CONFIG_FILE))
            or not os.access(e.path, os.R_OK | os.X_OK)]
    return sorted(runs, key=lambda r: r.name, reverse=True)


def inside(root: Path, path: Path) -> bool:
    """Whether `path` is strictly inside `root` once both are resolved (no `../` escapes)."""
    root, path = Path(root).resolve(), Path(path).resolve()
    return path != root and root in path.parents

