"""`voxtop watch`: a run's progress lines and events as plain text, until the run ends (no torch).

Each poll reads only what was appended since the last one: train.log by byte offset here,
metrics.jsonl through `MetricsReader`, plus the small status.json. The trainer logs every
event as `<level>: <message>` right after writing its record, so such a log line is
printed as the event (`[event warn oom_backoff] ...`) in its place; an event with no log
line (a crash) is printed on its own a moment later.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from trainer.rundir import MetricsReader, RunDir, finite
from trainer.rundir.files import open_regular
from trainer.rundir.names import STARTING_GRACE_S
from trainer.rundir.queries import newest_records, tail_records
from tui.plain import visible
# After the `end` record, wait at most this long for the trainer to exit, so its last log
# line ("run finished at step N") is printed too.
END_DRAIN_S = 10.0
TAIL_BYTES = 65_536
METRICS_TAIL_BYTES = 262_144
# An event's log line follows its record within microseconds, unless the trainer is descheduled;
# only after this long is an event with no log line yet printed on its own.
EVENT_WAIT_S = 2.0
OK_ENDINGS = ("finished", "early_stop", "stopped")


@dataclass
class LogFollower:
    """Reads a text file's new complete lines by byte offset; a partial last line waits."""

    path: Path
    offset: int = 0
    _partial: bytes = b""

    def start_at_tail(self, lines: int) -> list[str]:
        """Skip to the end of the file, returning its last `lines` complete lines."""
        try:
            with open_regular(self.path) as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - TAIL_BYTES))
                data = handle.read(size - handle.tell())
        except (FileNotFoundError, NotADirectoryError):
            return []
        complete, _, self._partial = data.rpartition(b"\n")
        self.offset = size
        found = _decode_lines(complete) if complete or data.startswith(b"\n") else []
        if size > TAIL_BYTES and found:
            found = found[1:]  # the first line is probably cut
        return found[-lines:] if lines > 0 else []

    def read_new(self, up_to: int | None = None) -> list[str]:
        """Complete lines appended since the last call (only as far as byte `up_to`)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:  # replaced or truncated: read it again from the start
            self.offset, self._partial = 0, b""
        end = size if up_to is None else min(size, max(up_to, self.offset))
        if end == self.offset:
            return []
        with open_regular(self.path) as handle:
            handle.seek(self.offset)
            data = handle.read(end - self.offset)
        self.offset += len(data)
        complete, newline, self._partial = (self._partial + data).rpartition(b"\n")
        return _decode_lines(complete) if newline else []

    def flush_partial(self) -> list[str]:
        """The unterminated last line, once nothing more will be written."""
        partial, self._partial = self._partial, b""
        return _decode_lines(partial) if partial.strip() else []


def _decode_lines(data: bytes) -> list[str]:
    return [line.rstrip("\r") for line in data.decode("utf-8", errors="replace").split("\n")]


def _log_line(record: dict[str, Any]) -> str:
    """The line the trainer logs for an event record."""
    return f"{record.get('level')}: {record.get('message')}"


def format_event(record: dict[str, Any]) -> str:
    return f"[event {record.get('level', 'info')} {record.get('code', '?')}] {record.get('message', '')}"


@dataclass
class Watcher:
    """Follows one run: `begin()` prints the context, then each `poll_output()` what is new."""

    run: RunDir
    out: TextIO = field(default_factory=lambda: sys.stdout)
    log: LogFollower = field(init=False)
    metrics: MetricsReader = field(init=False)
    ended: str | None = field(default=None, init=False)  # the newest `end` record's reason
    _pending: list[tuple[float, dict[str, Any]]] = field(default_factory=list, init=False)  # (read at, event)
    _orphans: list[str] = field(default_factory=list, init=False)  # log lines of events printed on their own

    def __post_init__(self) -> None:
        self.log = LogFollower(self.run.log_path)
        self.metrics = MetricsReader(self.run.metrics_path)

    def begin(self, from_start: bool, tail_lines: int) -> None:
        """Print the context: the whole log (`from_start`) or its last `tail_lines` lines."""
        if from_start:
            self.poll_output()
            return
        # enough to tell whether the run has ended (an `end` is the last record of a session, and
        # a resume writes `start` first), at the same cost for any length of run
        records, self.metrics.offset = tail_records(self.metrics.path, METRICS_TAIL_BYTES)
        self._take_records(records)
        self._print_lines(self.log.start_at_tail(tail_lines))
        self._pending.clear()  # older events, already in the log or before the context shown

    def poll_output(self, final: bool = False) -> None:
        """Print new log lines and events; `final` flushes everything still held back."""
        log_size = _size(self.log.path)
        # records first: an event's record is written before its log line, so every event line
        # up to `log_size` has its record in hand and can be printed as the event
        self._take_records(self.metrics.read_new())
        self._print_lines(self.log.read_new(up_to=None if final else log_size))
        if final:
            self._print_lines(self.log.flush_partial())
        now = time.monotonic()
        for item in list(self._pending):
            if final or now - item[0] >= EVENT_WAIT_S:
                self._pending.remove(item)
                self._orphans.append(_log_line(item[1]))
                self.emit(format_event(item[1]))

    def _take_records(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            kind = record.get("kind")
            if kind == "event":
                self._pending.append((time.monotonic(), record))
            elif kind == "start":
                self.ended = None  # a resume: the earlier `end` no longer applies
            elif kind == "end":
                self.ended = str(record.get("reason", "finished"))

    def _print_lines(self, lines: list[str]) -> None:
        for line in lines:
            match = next((item for item in self._pending if line == _log_line(item[1])), None)
            if match is not None:
                self._pending.remove(match)
                self.emit(format_event(match[1]))
            elif line in self._orphans:
                self._orphans.remove(line)  # its event was printed already
            else:
                self.emit(line)

    def emit(self, line: str) -> None:
        """One line out; what came from disk is data, so its control characters are shown, never sent."""
        self.out.write(visible(line) + "\n")
        self.out.flush()

    def state(self) -> str:
        """The run's state for watching: `effective_state`, the one judgement `voxtop runs` and the TUI share."""
        status = self.run.read_status() or {}
        state = self.run.effective_state(status)
        if state == "stale":
            again = self.run.read_status() or {}  # it may have finished between the read and the lock probe
            if again.get("state") in ("finished", "stopped", "failed"):
                return str(again["state"])
        if state == "unknown" and not self.run.is_locked() and _age_s(self.run.config_path) > STARTING_GRACE_S:
            return "stale"  # no status.json long after the run was made: nothing will ever write one
        return state

    def summary(self, outcome: str) -> str:
        status = self.run.read_status() or {}
        parts = [f"step {status.get('step', '?')}/{status.get('total_steps', '?')}"]
        newest = newest_records(self.run.metrics_path)  # the figures `voxtop runs` shows
        for kind in ("train", "val"):
            loss = finite(newest.get(kind, {}).get("loss"))
            if loss is not None:
                parts.append(f"{kind} loss {loss:.4f}")
        if outcome == "failed":
            parts.append(str(status.get("error") or "the trainer is gone without saying why (killed?)"))
        elif outcome == "stale":
            parts.append(str(status.get("error") or self.run.stale_reason(status)))
        return f"voxtop: run {self.run.name} {outcome}: {', '.join(parts)}"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def watch(run: RunDir, *, from_start: bool = False, tail_lines: int = 10, interval_s: float = 1.0,
          out: TextIO | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Print the run's progress until it ends; 0 if it finished, early-stopped or was stopped, else 1."""
    watcher = Watcher(run, out or sys.stdout)
    watcher.begin(from_start, tail_lines)
    while True:
        state = watcher.state()
        if watcher.ended is not None or state in ("finished", "stopped", "failed", "stale"):
            break
        sleep(interval_s)
        watcher.poll_output()
    if watcher.ended is not None and state not in ("failed", "stale"):
        _wait_for_exit(run, sleep)
    watcher.poll_output(final=True)
    outcome = watcher.ended or state
    watcher.emit(watcher.summary(outcome))
    return 0 if outcome in OK_ENDINGS else 1


def _wait_for_exit(run: RunDir, sleep: Callable[[float], None]) -> None:
    """After the `end` record, give the trainer a moment to write its status and last line and exit."""
    deadline = time.monotonic() + END_DRAIN_S
    while time.monotonic() < deadline:
        status = run.read_status() or {}
        if status.get("state") in ("finished", "stopped", "failed") and not run.is_locked():
            return
        sleep(0.1)
