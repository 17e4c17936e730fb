"""The run contract's queries: what the screens and commands ask of a run, answered one way.

The Runs screen, `voxtop runs`, the Monitor's checkpoint table, `voxtop checkpoints`,
`voxtop watch`, `voxtop export` and the trainer's resume all ask here, so they cannot
disagree. Every answer costs a bounded read: a run's summary reads status.json and the
metrics file backwards from its end until it has the newest train and val records; the
checkpoint rows read the val series and the rare records through metrics.index (a run
without one is parsed); tails read a fixed number of bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from trainer.rundir.files import open_regular
from trainer.rundir.index import index_path
from trainer.rundir.layout import CheckpointFile, RunDir
from trainer.rundir.reader import MetricsReader, read_metrics
from trainer.rundir.records import current_history, finite, parse_record, resumed_from_step

if TYPE_CHECKING:
    from trainer.health_records import HealthSummary
    from trainer.overtrain import DetectorConfig

#: Bytes of metrics.jsonl a tail reads (the Runs screen's estimates, `voxtop watch`'s context).
TAIL_BYTES = 65_536
#: Bytes read per step when a summary walks back from the end of metrics.jsonl.
BACK_BLOCK_BYTES = 256 * 1024
#: How far back a summary looks for the newest train and val records before it gives up.
BACK_LIMIT_BYTES = 64 * 2**20


# --- tails ---------------------------------------------------------------------------------


def tail_records(path: Path, max_bytes: int = TAIL_BYTES) -> tuple[list[dict[str, Any]], int]:
    """The well-formed records in the last `max_bytes` of a metrics file, oldest first, and the
    byte offset after the last complete line (where a follower goes on reading)."""
    try:
        with open_regular(path) as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            handle.seek(start)
            data = handle.read(size - start)
    except FileNotFoundError:
        return [], 0
    if start > 0:
        data = data[data.find(b"\n") + 1:]  # a cut first line
        start = size - len(data)
    complete = data[:data.rfind(b"\n") + 1]
    records = [record for record in map(parse_record, complete.splitlines()) if record is not None]
    return records, start + len(complete)


def _lines_backwards(path: Path, limit_bytes: int) -> Iterable[bytes]:
    """The complete lines of a file from its end backwards, reading at most `limit_bytes`."""
    with open_regular(path) as handle:
        end = handle.seek(0, os.SEEK_END)
        carry = b""
        position = end
        first = True
        while position > 0 and end - position < limit_bytes:
            size = min(BACK_BLOCK_BYTES, position)
            position -= size
            handle.seek(position)
            block = handle.read(size) + carry
            lines = block.split(b"\n")
            carry = lines[0]
            rest = lines[1:]
            if first:  # a partial last line (being written) is not a record yet
                rest = rest[:-1]
                first = False
            yield from reversed(rest)
        if position == 0 and carry and not first:
            yield carry


def newest_records(path: Path, kinds: tuple[str, ...] = ("train", "val"),
                   limit_bytes: int = BACK_LIMIT_BYTES) -> dict[str, dict[str, Any]]:
    """The newest record of each of `kinds` in the run's current history, read from the end.

    A record is superseded when a later resume's `start` (`resumed_from` = S) has S below its
    step (`current_history`), so walking back keeps the lowest S seen and skips records past it.
    """
    found: dict[str, dict[str, Any]] = {}
    lowest_resume = None
    try:
        for line in _lines_backwards(path, limit_bytes):
            record = parse_record(line)
            if record is None:
                continue
            resumed_from = resumed_from_step(record)
            if resumed_from is not None:
                lowest_resume = resumed_from if lowest_resume is None else min(lowest_resume, resumed_from)
                continue
            kind = record["kind"]
            if kind in kinds and kind not in found and (lowest_resume is None or record["step"] <= lowest_resume):
                found[kind] = record
                if len(found) == len(kinds):
                    break
    except FileNotFoundError:
        pass
    return found


def current_records(path: Path) -> list[dict[str, Any]]:
    """Every record of a metrics file in the run's current history (what a resume replays)."""
    return current_history(read_metrics(path))


# --- run summary ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    """One run at a glance: state, progress and the newest train and val figures, each labelled."""

    name: str
    path: Path
    state: str
    step: int
    total_steps: int
    epoch: int
    train_loss: float | None
    val_loss: float | None
    val_attention: float | None
    started_at: float | None
    error: str | None
    checkpoints: int
    train_attention: float | None = None
    command: str | None = None
    """The command line of a run started by `voxtop launch` (None for voxtop's own runs)."""

    @classmethod
    def unreadable(cls, run: RunDir, reason: str) -> RunSummary:
        """A run whose files cannot be read, listed with the reason instead of hiding it."""
        return cls(run.name, run.path, "unreadable", 0, 0, 0, None, None, None, None, reason, 0)

    @property
    def attention(self) -> float | None:
        """The attention score a run is listed with: the newest validation's (as `val_attention`)."""
        return self.val_attention

    def as_json(self) -> dict[str, Any]:
        """The summary as `voxtop runs --json` prints it."""
        return {"name": self.name, "path": str(self.path), "state": self.state, "step": self.step,
                "total_steps": self.total_steps, "epoch": self.epoch, "started_at": self.started_at,
                "error": self.error, "train_loss": self.train_loss, "val_loss": self.val_loss,
                "train_attention_score": self.train_attention, "val_attention_score": self.val_attention,
                "checkpoints": self.checkpoints, **({"command": self.command} if self.command else {})}


def _whole(value: Any) -> int | None:
    number = finite(value)
    return int(number) if number is not None else None


def run_summary(run: RunDir, newest: Mapping[str, dict[str, Any]] | None = None) -> RunSummary:
    """The summary of one run from status.json and its newest train and val records (`newest_records`).

    A run whose files cannot be read (permissions, a FIFO for a file, a failing disk) is summed up as
    `unreadable` with the reason, so it is listed, never hides the others.
    """
    from trainer.rundir.faults import describe_os_error

    try:
        return _run_summary(run, newest)
    except OSError as exc:
        return RunSummary.unreadable(run, describe_os_error(exc, "reading"))


def _run_summary(run: RunDir, newest: Mapping[str, dict[str, Any]] | None) -> RunSummary:
    if not os.access(run.path, os.R_OK | os.X_OK):
        raise PermissionError(13, "Permission denied", str(run.path))
    status = run.read_status() or {}
    last = newest if newest is not None else newest_records(run.metrics_path)
    train, val = last.get("train", {}), last.get("val", {})
    step = _whole(status.get("step")) or _whole(train.get("step")) or 0
    epoch = _whole(status.get("epoch")) or _whole(train.get("epoch")) or 0
    error = status.get("error")
    state = run.effective_state(status or None)
    if state == "stale" and not error:
        error = run.stale_reason(status)
    return RunSummary(
        name=run.name, path=run.path, state=state, step=step,
        total_steps=_whole(status.get("total_steps")) or 0, epoch=epoch,
        train_loss=finite(train.get("loss")), val_loss=finite(val.get("loss")),
        train_attention=finite(train.get("attention_score")), val_attention=finite(val.get("attention_score")),
        started_at=finite(status.get("started_at")), error=str(error) if error else None,
        checkpoints=len(run.checkpoints()))


# --- checkpoints ---------------------------------------------------------------------------


def checkpoint_tags(analysis_tags: Mapping[int, list[str]], step: int, record: Mapping[str, Any]) -> list[str]:
    """The tags shown for a checkpoint: the analysis's, else its record's, never `best`.

    A record's `best` meant "best so far" when it was saved; `recommended` is the best now.
    """
    return [t for t in analysis_tags.get(step, record.get("tags") or []) if t != "best"]


@dataclass(frozen=True)
class CheckpointRow:
    """One resumable checkpoint as listed: file, val loss, read-through health and tags."""

    step: int
    path: Path
    mtime: float
    size: int
    val_loss: float | None
    health: HealthSummary | None
    tags: list[str]

    def as_json(self) -> dict[str, Any]:
        """The row as `voxtop checkpoints --json` prints it."""
        return {"step": self.step, "path": str(self.path), "time": self.mtime, "size_mb": round(self.size / 2**20, 2),
                "val_loss": self.val_loss, "health": self.health.as_json() if self.health is not None else None,
                "tags": self.tags}


@dataclass(frozen=True)
class CheckpointTable:
    """A run's checkpoints, newest first, and the recommended one (`trainer.overtrain.recommend`) with why."""

    rows: list[CheckpointRow] = field(default_factory=list)
    recommended: int | None = None
    recommended_reason: str | None = None

    def path_of(self, step: int) -> Path | None:
        """The file of the checkpoint at `step`, if it is listed."""
        return next((row.path for row in self.rows if row.step == step), None)


def detector_config(config_path: Path) -> DetectorConfig:
    """A run's [schedule] overtraining smoothing and patience, or the defaults when its config cannot be read."""
    from trainer import config as config_mod
    from trainer.overtrain import DetectorConfig

    try:
        schedule = config_mod.load(config_path).schedule
    except (config_mod.ConfigError, OSError):
        return DetectorConfig()
    return DetectorConfig(smoothing=schedule.overtraining_smoothing, patience=schedule.overtraining_patience)


@dataclass
class ContractHistory:
    """What the checkpoint queries need of metrics.jsonl, under the resume rule: the val-loss
    series (steps and values, file order) and the records of the rare kinds (checkpoint, health, ...)."""

    val_steps: list[int]
    val_losses: list[float]
    records: list[dict[str, Any]]


def read_checkpoint_history(metrics_path: Path) -> ContractHistory:
    """The val series and rare records of a run, through metrics.index where it has one."""
    import numpy as np

    reader = MetricsReader(Path(metrics_path))
    if index_path(metrics_path).exists():  # the index skips train rows for nothing
        new = reader.read_new_columns({"val": ("step", "loss")}, tail=0, drop=frozenset({"train", "alignment"}))
    else:  # parsed, train records cost least as a column of steps
        new = reader.read_new_columns({"train": ("step",), "val": ("step", "loss")}, tail=0)
    columns = new.columns["val"]
    lines, steps, losses = columns["line"], columns["step"], columns["loss"]
    resumes = [(line, resumed_from_step(r)) for line, r in zip(new.record_lines, new.records)
               if resumed_from_step(r) is not None]
    if resumes:  # a val record is superseded by a later resume from below its step
        resume_lines = np.asarray([line for line, _ in resumes], dtype=np.int64)
        lowest_after = np.minimum.accumulate(np.asarray([s for _, s in resumes], dtype=np.float64)[::-1])[::-1]
        at = np.searchsorted(resume_lines, lines, side="right")
        bound = np.append(lowest_after, np.inf)[at]
        keep = steps <= bound
        steps, losses = steps[keep], losses[keep]
    return ContractHistory([int(s) for s in steps.tolist()], losses.tolist(), current_history(new.records))


def checkpoint_table(run: RunDir, detector: DetectorConfig | None = None,
                     history: ContractHistory | None = None, sentences: bool = True) -> CheckpointTable:
    """The checkpoints still on disk, newest first, with val loss, health, tags and the recommended one.

    `sentences=False` leaves each health record's sentences out (the counts are all a text listing shows).
    """
    files = run.checkpoints()
    history = history if history is not None else read_checkpoint_history(run.metrics_path)
    detector = detector if detector is not None else detector_config(run.config_path)
    return tabulate_checkpoints(files, history, detector, sentences)


def tabulate_checkpoints(files: list[CheckpointFile], history: ContractHistory,
                         detector: DetectorConfig, sentences: bool = True) -> CheckpointTable:
    """`checkpoint_table` from what was read: minima of the val loss, the recommendation and each row's tags."""
    from trainer.health_records import health_by_step
    from trainer.overtrain import Evaluation, candidates, tag_checkpoints

    existing = {f.step for f in files}
    saved: dict[int, dict[str, Any]] = {}
    for record in history.records:
        if record["kind"] == "checkpoint" and record["step"] in existing:
            saved[record["step"]] = record
    health = health_by_step(history.records, existing, items=sentences)
    val_loss = {step: finite(record.get("val_loss")) for step, record in saved.items()}
    evaluations = [Evaluation(step, loss) for step, loss in zip(history.val_steps, history.val_losses)]
    found = candidates(evaluations, val_loss, detector)
    saved_tags = {step: list(record.get("tags") or []) for step, record in saved.items()}
    tags, recommended, reason = tag_checkpoints(found, val_loss, saved_tags, health)
    rows = [CheckpointRow(f.step, f.path, f.mtime, f.size, val_loss.get(f.step), health.get(f.step),
                          checkpoint_tags(tags, f.step, saved.get(f.step, {})))
            for f in reversed(files)]
    return CheckpointTable(rows, recommended, reason)
