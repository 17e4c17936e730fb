"""The run-directory contract between trainer and TUI: names, records, atomic writes (no torch).

Anything that reads or writes a run goes through here; nothing else knows file names.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

RUN_PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]+$")
CHECKPOINT_RE = re.compile(r"^step-(\d{8})\.pt$")
ACTIVE_STATES = ("starting", "running", "stopping")
FINAL_STATES = ("finished", "stopped", "failed")
HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0


class RunError(Exception):
    """A run directory that cannot be used as asked; the message says why and what to do."""


def check_run_prefix(prefix: str) -> str:
    """The prefix if it is a safe run-name part; RunError otherwise."""
    if not prefix or not RUN_PREFIX_RE.match(prefix) or prefix in (".", ".."):
        raise RunError(f"run name {prefix!r} is not allowed: use only letters, digits, '.', '_' and '-'")
    return prefix


def new_run_name(prefix: str, now: datetime | None = None) -> str:
    return f"{check_run_prefix(prefix)}_{(now or datetime.now()).strftime('%Y%m%d_%H%M%S')}"


# --- atomic files ------------------------------------------------------------------


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Any) -> None:
    """Call `write(fileobj)` on a temp file beside `path`, fsync it, then rename it over `path`.

    A reader sees the old file or the new one, never half of one; on any error the temp
    file is removed and the old file is untouched.
    """
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode("utf-8"))


# --- metrics -------------------------------------------------------------------------


class MetricsWriter:
    """Appends one JSON record per line to metrics.jsonl, flushed per line."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = open(path, "a", encoding="utf-8")

    def write(self, kind: str, step: int, **fields: Any) -> dict[str, Any]:
        record = {"t": round(time.time(), 3), "kind": kind, "step": int(step), **fields}
        self._handle.write(json.dumps(record, allow_nan=True) + "\n")
        self._handle.flush()
        return record

    def sync(self) -> None:
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.flush()
            self._handle.close()


@dataclass
class MetricsReader:
    """Reads metrics.jsonl incrementally by byte offset: each call costs only the new bytes.

    A trailing partial line is kept for the next call; a malformed line is counted and
    skipped; a file that shrank (replaced) is read again from the start.
    """

    path: Path
    offset: int = 0
    malformed: int = 0
    _partial: bytes = b""

    def read_new(self) -> list[dict[str, Any]]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:
            self.offset, self._partial = 0, b""
        if size == self.offset:
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read(size - self.offset)
        self.offset += len(data)
        data = self._partial + data
        complete, _, self._partial = data.rpartition(b"\n")
        return self._parse(complete)

    def _parse(self, chunk: bytes) -> list[dict[str, Any]]:
        records = []
        for line in chunk.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                self.malformed += 1
                continue
            if isinstance(record, dict) and isinstance(record.get("kind"), str):
                records.append(record)
            else:
                self.malformed += 1
        return records


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a metrics file."""
    return MetricsReader(Path(path)).read_new()


# --- checkpoints ----------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointFile:
    step: int
    path: Path
    mtime: float
    size: int


@dataclass
class RunDir:
    """Paths and records of one run directory."""

    path: Path
    _lock_handle: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    config_path = property(lambda self: self.path / "config.toml")
    status_path = property(lambda self: self.path / "status.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    log_path = property(lambda self: self.path / "train.log")
    lock_path = property(lambda self: self.path / "trainer.lock")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    alignments_dir = property(lambda self: self.path / "alignments")
    mels_dir = property(lambda self: self.path / "mels")
    samples_dir = property(lambda self: self.path / "samples")

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints_dir / f"step-{step:08d}.pt"

    def alignment_path(self, step: int) -> Path:
        return self.alignments_dir / f"step-{step:08d}.npy"

    def mel_path(self, step: int) -> Path:
        return self.mels_dir / f"step-{step:08d}.npy"

    def sample_path(self, step: int) -> Path:
        return self.samples_dir / f"step-{step:08d}.wav"

    def make_folders(self) -> None:
        for folder in (self.checkpoints_dir, self.alignments_dir, self.mels_dir, self.samples_dir):
            folder.mkdir(parents=True, exist_ok=True)

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

    def read_status(self) -> dict[str, Any] | None:
        try:
            status = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None
        return status if isinstance(status, dict) else None

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into status.json (atomically) and stamp `updated_at`."""
        status = self.read_status() or {}
        status.update(fields)
        status["updated_at"] = time.time()
        atomic_write_json(self.status_path, status)
        return status

    def effective_state(self, status: dict[str, Any] | None = None, now: float | None = None) -> str:
        """The state as a watcher should show it: `stale` when an active run's trainer is gone.

        On this host the trainer's lock tells for sure; for a run written from another host
        (shared disk) an old heartbeat does.
        """
        status = status if status is not None else self.read_status()
        if not status:
            return "unknown"
        state = str(status.get("state", "unknown"))
        if state not in ACTIVE_STATES:
            return state
        if status.get("host") == socket.gethostname():
            return state if self.is_locked() else "stale"
        age = (now or time.time()) - float(status.get("updated_at") or 0)
        return "stale" if age > STALE_AFTER_S else state

    # one trainer per run ----------------------------------------------------------------

    def acquire_lock(self) -> None:
        """Hold the run's lock for this process's lifetime; RunError if another trainer has it.

        flock is released by the kernel when the holder dies, so a killed trainer never
        keeps a run locked and a recycled pid cannot fake a holder.
        """
        handle = open(self.lock_path, "a+")
        for _ in range(20):
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                time.sleep(0.05)  # a watcher's probe holds it for microseconds
        else:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunError(f"{self.path} is already being trained by {holder}; stop that trainer "
                           "first, or start a new run")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._lock_handle = handle

    def is_locked(self) -> bool:
        """Whether a live trainer holds this run's lock."""
        try:
            handle = open(self.lock_path, "r")
        except FileNotFoundError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    def release_lock(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None


def create_run(runs_root: Path, prefix: str, config_text: str, now: datetime | None = None) -> RunDir:
    """A new run directory with its config.toml; never reuses an existing folder."""
    runs_root = Path(runs_root)
    runs_root.mkdir(parents=True, exist_ok=True)
    base = new_run_name(prefix, now)
    for attempt in range(1000):
        name = base if attempt == 0 else f"{base}-{attempt}"
        path = runs_root / name
        try:
            path.mkdir()
        except FileExistsError:
            continue
        run = RunDir(path)
        run.make_folders()
        atomic_write_text(run.config_path, config_text)
        return run
    raise RunError(f"could not find a free run name for {base!r} in {runs_root}")


def resolve_run(runs_root: Path, name_or_path: str) -> RunDir:
    """A run given by folder path or by name inside `runs_root`; RunError if there is none."""
    candidate = Path(name_or_path)
    if not candidate.is_dir() and not candidate.is_absolute() and len(candidate.parts) == 1:
        candidate = Path(runs_root) / name_or_path
    if not (candidate / "config.toml").is_file():
        raise RunError(f"{name_or_path} is not a voxtop run (no config.toml in {candidate})")
    return RunDir(candidate)


def list_runs(runs_root: Path) -> list[RunDir]:
    """Run directories under `runs_root`, newest name first."""
    try:
        entries = [e for e in os.scandir(runs_root) if e.is_dir() and not e.name.startswith(".")]
    except FileNotFoundError:
        return []
    runs = [RunDir(Path(e.path)) for e in entries if os.path.exists(os.path.join(e.path, "config.toml"))]
    return sorted(runs, key=lambda r: r.name, reverse=True)


def inside(root: Path, path: Path) -> bool:
    """Whether `path` is strictly inside `root` once both are resolved (no `../` escapes)."""
    root, path = Path(root).resolve(), Path(path).resolve()
    return path != root and root in path.parents


def current_history(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the run's current history, in file order.

    A trainer killed after its newest checkpoint went on logging steps that its resume
    repeats; the resume's `start` record (`resumed_from` = S) supersedes every earlier
    record past step S. Followers apply the same rule as records arrive.
    """
    history: list[dict[str, Any]] = []
    for record in records:
        resumed_from = record.get("resumed_from") if record.get("kind") == "start" else None
        if isinstance(resumed_from, int):
            history = [r for r in history if r.get("step", 0) <= resumed_from]
        history.append(record)
    return history


def iter_records(path: Path, kind: str | None = None) -> Iterator[dict[str, Any]]:
    for record in current_history(read_metrics(path)):
        if kind is None or record.get("kind") == kind:
            yield record
