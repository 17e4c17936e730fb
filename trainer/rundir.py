"""The run-directory contract between trainer and TUI: names, records, atomic writes (no torch).

Anything that reads or writes a run goes through here; nothing else knows file names.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import socket
import struct
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
    temp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")
    try:
        with open(temp, "wb") as handle:
            write(handle)
            injected = injected_write_error(*_kind_of(path))
            if injected is not None:  # the disk fills up halfway through this file
                handle.truncate(handle.tell() // 2)
                raise injected
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


TEMP_MARK = ".tmp-"
_STEP_FILE_RE = re.compile(r"^step-(\d+)\.")
_FOLDER_KINDS = {"checkpoints": "checkpoint", "alignments": "alignment", "mels": "mel", "samples": "sample"}

#: Fault injection for tests and bench/kill_soak.py: `KIND:ERRNO[@STEP]`, comma-separated, e.g.
#: `checkpoint:ENOSPC@6,metrics:EIO@6`. Writes of that kind (checkpoint, alignment, mel,
#: sample, metrics, status, other) for step >= STEP fail with that errno after writing half
#: their bytes, as a disk that fills up does. Read here and nowhere else.
INJECT_WRITE_ERROR_ENV = "VOXTOP_INJECT_WRITE_ERROR"


def _kind_of(path: Path) -> tuple[str, int | None]:
    """(file kind, step) of a run-directory file, for fault injection."""
    if path.name == "status.json":
        return "status", None
    match = _STEP_FILE_RE.match(path.name)
    kind = _FOLDER_KINDS.get(path.parent.name, "other")
    return kind, int(match.group(1)) if match else None


def injected_write_error(kind: str, step: int | None) -> OSError | None:
    """The error `VOXTOP_INJECT_WRITE_ERROR` asks a write of `kind` at `step` to fail with, if any."""
    spec = os.environ.get(INJECT_WRITE_ERROR_ENV)
    if not spec:
        return None
    for item in spec.split(","):
        target, _, rest = item.strip().partition(":")
        name, _, at = rest.partition("@")
        if target != kind:
            continue
        if at.strip() and (step is None or step < int(at)):
            continue
        code = getattr(errno, name.strip(), errno.EIO)
        return OSError(code, f"{os.strerror(code)} (injected by {INJECT_WRITE_ERROR_ENV})")
    return None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode("utf-8"))


# --- metrics -------------------------------------------------------------------------


# --- metrics.index: where each line of metrics.jsonl is, and its chart numbers ----------
#
# metrics.jsonl stays the record of truth; metrics.index lets a reader attach to a run of
# a million records without parsing 350 MB of JSON. After a 16-byte header, one 40-byte
# row per record, in file order: byte offset and length (newline included) of the line,
# kind (1 train, 2 val, 0 any other), then step, loss and attention_score as float64
# (NaN where absent). The writer keeps it for runs it starts; a reader trusts only the
# rows that agree with metrics.jsonl and parses the rest of the file as before.
INDEX_HEADER = b"VOXMIDX1" + struct.pack("<II", 40, 0)
INDEX_ROW = struct.Struct("<qiiddd")
INDEX_KINDS = {"train": 1, "val": 2}
INDEX_FIELDS = ("step", "loss", "attention_score")
INDEX_REPAIR_BYTES = 4 * 2**20  # at most this much unindexed metrics.jsonl is indexed on open


def index_path(metrics_path: Path) -> Path:
    return metrics_path.with_name("metrics.index")


def _index_row(offset: int, line: bytes, record: dict[str, Any]) -> bytes:
    return INDEX_ROW.pack(offset, len(line), INDEX_KINDS.get(record.get("kind"), 0),  # type: ignore[arg-type]
                          *(_as_float(record.get(name)) for name in INDEX_FIELDS))


def index_rows(data: bytes, offset: int = 0) -> Iterator[bytes]:
    """The index rows of the complete records in `data`, a part of metrics.jsonl from `offset`
    (a partial last line has none: the next record starts after a newline, see `_ragged`)."""
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            return
        record = _json_record(line)
        if record is not None:
            yield _index_row(offset, line, record)
        offset += len(line)


def _same_number(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


class MetricsWriter:
    """Appends one JSON record per line to metrics.jsonl, one write(2) per line.

    No user-space buffer: a record is in the kernel when `write` returns, so SIGKILL loses
    nothing already written, and a failed write (disk full, I/O error) is cut back off the
    file, so the next record starts on a fresh line instead of after half a line. Each
    record also gets its row in metrics.index (see above) when the run has one.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self._ragged = False  # a failed write could not be cut off: start the next on a new line
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            self._ragged = True  # a line cut short (a crash mid-write): do not glue the next one to it
        self._index: int | None = None
        try:
            self._index = self._open_index(size)
        except OSError:  # the index only speeds readers up: without it they parse the JSON
            self._index = None

    def _open_index(self, size: int) -> int | None:
        """The index, brought level with metrics.jsonl (`size` bytes); None where it cannot be (an older run)."""
        path = index_path(self.path)
        if not path.exists() and size:
            return None  # a run from before the index: readers parse it
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            index_size = os.fstat(fd).st_size
            if index_size == 0:
                os.write(fd, INDEX_HEADER)
                index_size = len(INDEX_HEADER)
            if os.pread(fd, len(INDEX_HEADER), 0) != INDEX_HEADER:
                os.close(fd)
                return None
            rows = (index_size - len(INDEX_HEADER)) // INDEX_ROW.size
            end = 0
            while rows:  # rows whose line never reached metrics.jsonl (a crash in between) go
                offset, length = INDEX_ROW.unpack(os.pread(fd, INDEX_ROW.size,
                                                           len(INDEX_HEADER) + (rows - 1) * INDEX_ROW.size))[:2]
                if offset + length <= size:
                    end = offset + length
                    break
                rows -= 1
            os.ftruncate(fd, len(INDEX_HEADER) + rows * INDEX_ROW.size)
            if end < size and not self._index_rest(fd, end, size):
                os.close(fd)
                return None
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _index_rest(self, fd: int, start: int, size: int) -> bool:
        """Index the lines metrics.jsonl has beyond the index (written just before a crash)."""
        if size - start > INDEX_REPAIR_BYTES:
            return False
        with open(self.path, "rb") as handle:
            handle.seek(start)
            data = handle.read(size - start)
        rows = b"".join(index_rows(data, start))
        if rows:
            os.write(fd, rows)
        return True

    def write(self, kind: str, step: int, **fields: Any) -> dict[str, Any]:
        record = {"t": round(time.time(), 3), "kind": kind, "step": int(step), **fields}
        line = (json.dumps(record, allow_nan=True) + "\n").encode("utf-8")
        if self._fd is None:
            raise ValueError(f"{self.path}: write to a closed MetricsWriter")
        if self._ragged:
            line = b"\n" + line
        size_before = os.fstat(self._fd).st_size
        try:
            view = memoryview(line)
            injected = injected_write_error("metrics", int(step))
            if injected is not None:
                os.write(self._fd, view[:len(view) // 2])
                raise injected
            while view:
                view = view[os.write(self._fd, view):]
        except BaseException:
            self._cut_back(size_before)
            raise
        offset = size_before + (1 if self._ragged else 0)
        self._ragged = False
        if self._index is not None:
            body = line[1:] if line.startswith(b"\n") else line
            try:
                os.write(self._index, _index_row(offset, body, record))
            except OSError:  # the index is an accelerator: stop keeping it, the JSON is whole
                self._close_index()
        return record

    def _close_index(self) -> None:
        if self._index is not None:
            fd, self._index = self._index, None
            os.close(fd)

    def _cut_back(self, size: int) -> None:
        """Remove the part of a failed record that reached the file."""
        try:
            os.ftruncate(self._fd, size)  # type: ignore[arg-type]
        except OSError:
            self._ragged = True

    def sync(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        self._close_index()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


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
            except (ValueError, UnicodeDecodeError, RecursionError):  # junk, or `[[[[...` nested too deep
                self.malformed += 1
                continue
            if isinstance(record, dict) and isinstance(record.get("kind"), str):
                records.append(record)
            else:
                self.malformed += 1
        return records


    def read_new_columns(self, fields: dict[str, tuple[str, ...]], tail: int = 50) -> MetricsColumns:
        """Like `read_new`, but the records of the kinds in `fields` come back as float64 arrays.

        Attaching to a run with a million train records must take about a second, so lines
        laid out as MetricsWriter writes them are parsed with numpy in blocks of
        READ_CHUNK_BYTES, with no Python object per record; any other line goes through
        json as in `read_new` (same malformed counting). A value that is missing or null
        reads as NaN. The newest `tail` records of each of those kinds also come back whole.
        """
        import numpy as np

        result = MetricsColumns(fields, tail)
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return result.finish()
        if size < self.offset:
            self.offset, self._partial = 0, b""
        if self.offset == 0 and not self._partial and all(
                kind in INDEX_KINDS and set(names) <= set(INDEX_FIELDS) for kind, names in fields.items()):
            self._read_index(np, size, result)
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            while self.offset < size:
                carried = len(self._partial)
                want = min(READ_CHUNK_BYTES, size - self.offset)
                block = np.empty(carried + want + _BLOCK_PAD, dtype=np.uint8)
                block[:carried] = np.frombuffer(self._partial, dtype=np.uint8)
                got = handle.readinto(memoryview(block)[carried:carried + want])
                if not got:
                    break
                self.offset += got
                filled = carried + got
                block[filled:] = 0
                ends = np.flatnonzero(block[:filled] == 10)
                if not len(ends):
                    self._partial = block[:filled].tobytes()
                    continue
                self._partial = block[ends[-1] + 1:filled].tobytes()
                self.malformed += _parse_columns(np, block, ends, result)
        return result.finish()


    def _read_index(self, np: Any, size: int, out: MetricsColumns) -> None:
        """Take the lines metrics.index covers from it, when its rows agree with metrics.jsonl.

        Only the rows that cover the file from its first byte without a gap are taken (a
        line written by someone else, or junk, ends the covered part there); spot checks of
        nine lines spread over that part that disagree with their rows make the whole index
        unused (the file is parsed instead). Records other than the chart kinds and the
        newest lines of each chart kind are read by their offsets.
        """
        try:
            raw = index_path(self.path).read_bytes()
        except OSError:
            return
        if not raw.startswith(INDEX_HEADER):
            return
        dtype = np.dtype([("offset", "<i8"), ("length", "<i4"), ("kind", "<i4"),
                          *((name, "<f8") for name in INDEX_FIELDS)])
        rows = np.frombuffer(raw, dtype=dtype, count=(len(raw) - len(INDEX_HEADER)) // dtype.itemsize,
                             offset=len(INDEX_HEADER))
        ends = rows["offset"] + rows["length"]
        inside = ends <= size
        n = len(rows) if inside.all() else int(np.argmin(inside))
        if not n:
            return
        rows, ends = rows[:n], ends[:n]
        gaps = np.flatnonzero(rows["offset"][1:] != ends[:-1])
        if len(gaps):
            n = int(gaps[0]) + 1
            rows, ends = rows[:n], ends[:n]
        if rows["offset"][0] != 0 or rows["length"].min() < 2:
            return
        with open(self.path, "rb") as handle:
            fd = handle.fileno()

            def line(i: int) -> bytes:
                return os.pread(fd, int(rows["length"][i]), int(rows["offset"][i]))

            for i in sorted(set(np.linspace(0, n - 1, 9).astype(np.int64).tolist())):
                data = line(i)
                record = _json_record(data) if data.endswith(b"\n") else None
                if record is None or INDEX_KINDS.get(record["kind"], 0) != rows["kind"][i] or not all(
                        _same_number(_as_float(record.get(name)), float(rows[name][i])) for name in INDEX_FIELDS):
                    return
            others = []
            for i in np.flatnonzero(rows["kind"] == 0).tolist():
                record = _json_record(line(i))
                if record is None:
                    return  # not the line the row says: trust none of it
                others.append((i, record))
            for kind, names in out.fields.items():
                picked = np.flatnonzero(rows["kind"] == INDEX_KINDS[kind])
                part = {"line": picked.astype(np.float64)}
                part.update({name: rows[name][picked].astype(np.float64) for name in names})
                tail_rows = picked[-out.tail:].tolist() if out.tail else []
                out._add(kind, part, [(i, line(i)) for i in tail_rows])
        for i, record in others:
            out.records.append(record)
            out.record_lines.append(i)
        out.lines = n
        self.offset = int(ends[-1])


#: Bytes a reader takes in one block when it catches up on a long file: bounds its memory.
READ_CHUNK_BYTES = 4 * 2**20
_BLOCK_PAD = 256  # zero bytes after a block, so fixed-width windows never run off its end


@dataclass
class MetricsColumns:
    """New metrics records: the chosen kinds' numbers as arrays, every other record as a dict.

    `columns[kind]["line"]` and `record_lines` number the lines read by this call (0-based)
    so that callers can tell what came before what; `tails[kind]` holds the newest records
    of the kind whole, oldest first, and `tail_lines[kind]` their line numbers.
    """

    fields: dict[str, tuple[str, ...]]
    tail: int = 50
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    record_lines: list[int] = field(default_factory=list)
    tails: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tail_lines: dict[str, list[int]] = field(default_factory=dict)
    lines: int = 0
    _parts: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    _raw_tails: dict[str, list[tuple[int, Any]]] = field(default_factory=dict, repr=False)

    def _add(self, kind: str, part: dict[str, Any], raw_tail: list[tuple[int, Any]]) -> None:
        self._parts.setdefault(kind, []).append(part)
        kept = self._raw_tails.setdefault(kind, [])
        kept.extend(raw_tail)
        kept.sort(key=lambda item: item[0])
        del kept[:-self.tail or len(kept)]

    def finish(self) -> MetricsColumns:
        import numpy as np

        for kind, names in self.fields.items():
            parts = self._parts.get(kind, [])
            columns = {name: np.concatenate([p[name] for p in parts]) if parts else np.empty(0)
                       for name in ("line", *names)}
            columns["line"] = columns["line"].astype(np.int64)
            order = np.argsort(columns["line"], kind="stable")
            if len(order) and np.any(order[1:] < order[:-1]):
                columns = {name: values[order] for name, values in columns.items()}
            self.columns[kind] = columns
            raw = self._raw_tails.get(kind, [])
            parsed = [(line, item if isinstance(item, dict) else _json_record(item)) for line, item in raw]
            self.tails[kind] = [record for _, record in parsed if record is not None]
            self.tail_lines[kind] = [line for line, record in parsed if record is not None]
        self._parts, self._raw_tails = {}, {}
        return self


def _json_record(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("kind"), str) else None


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _parse_columns(np: Any, buf: Any, ends: Any, out: MetricsColumns) -> int:
    """Fold the lines of `buf` that end at `ends` into `out`; returns how many were malformed.

    A line takes the fast path when it is laid out as MetricsWriter writes the first line
    of its kind and shape: `{"t": `, then `, "kind": "<kind>", "step": ` at its first
    comma, the same number of commas, the wanted keys right after the expected commas, a
    closing brace, and wanted values that parse as JSON numbers (or null). Only those
    values are gathered, into one JSON array per block, and parsed in one call.
    """
    starts = np.concatenate(([0], ends[:-1] + 1))
    base, malformed = out.lines, 0
    out.lines += len(ends)
    commas = np.flatnonzero(buf[:ends[-1]] == 44)
    first_comma = np.searchsorted(commas, starts)
    comma_count = np.searchsorted(commas, ends) - first_comma
    shaped = (comma_count >= 2) & (buf[np.maximum(ends - 1, 0)] == 125) & _matches(np, buf, starts, b'{"t": ')
    taken = np.zeros(len(ends), dtype=bool)
    comma_at = commas[np.minimum(first_comma, len(commas) - 1)] if len(commas) else starts
    line_bytes = lambda row: buf[starts[row]:ends[row]].tobytes()  # noqa: E731
    for kind, names in out.fields.items():
        candidate = shaped & _matches(np, buf, comma_at, f', "kind": "{kind}", "step": '.encode())
        for count in np.unique(comma_count[candidate]).tolist():
            rows = np.flatnonzero(candidate & (comma_count == count))
            template = _json_record(line_bytes(rows[0]))
            keys = list(template) if template else []
            if keys[:3] != ["t", "kind", "step"] or len(keys) != count + 1:
                continue
            wanted = sorted((keys.index(name), name) for name in names if name in keys)
            ok = np.ones(len(rows), dtype=bool)
            value_starts, value_ends = [], []
            for index, name in wanted:
                key = f'"{name}": '.encode()
                if index == 0:
                    value_starts.append(starts[rows] + 1 + len(key))
                else:
                    before = commas[first_comma[rows] + index - 1]
                    if index > 2:  # the kind pattern already checked `"step": `
                        ok &= _matches(np, buf, before + 2, key)
                    value_starts.append(before + 2 + len(key))
                value_ends.append(commas[first_comma[rows] + index] if index < count else ends[rows] - 1)
            ok_index = np.flatnonzero(ok)
            rows = rows[ok_index]
            if not len(rows):
                continue
            values = None
            if wanted:
                values = _gather_numbers(np, buf, np.stack([v[ok_index] for v in value_starts], axis=1),
                                         np.stack([v[ok_index] for v in value_ends], axis=1))
                if values is None:
                    continue
            part = {"line": (base + rows).astype(np.float64)}
            order = [name for _, name in wanted]
            for name in names:
                part[name] = values[:, order.index(name)] if name in order else np.full(len(rows), np.nan)
            tail_rows = rows[-out.tail:].tolist() if out.tail else []
            out._add(kind, part, [(base + row, line_bytes(row)) for row in tail_rows])
            taken[rows] = True
    for row in np.flatnonzero(~taken).tolist():
        line = line_bytes(row)
        if not line.strip():
            continue
        record = _json_record(line)
        if record is None:
            malformed += 1
            continue
        kind = record["kind"]
        if kind in out.fields:
            part = {"line": np.array([float(base + row)])}
            part.update({name: np.array([_as_float(record.get(name))]) for name in out.fields[kind]})
            out._add(kind, part, [(base + row, record)])
        else:
            out.records.append(record)
            out.record_lines.append(base + row)
    return malformed


def _windows(np: Any, buf: Any, at: Any, width: int) -> Any:
    """Rows of `width` bytes of `buf` from each offset in `at` (a copy).

    `buf` is seen as overlapping `width`-byte records, one per byte offset, so the gather
    is one memcpy per row instead of numpy walking a 2-D index byte by byte.
    """
    records = np.ndarray(shape=(len(buf) - width,), dtype=np.dtype((np.void, width)), buffer=buf,
                         strides=(1,))
    return records[at].view(np.uint8).reshape(len(at), width)


def _matches(np: Any, buf: Any, at: Any, pattern: bytes) -> Any:
    """Whether `pattern` sits at each offset `at` of `buf`, compared eight bytes at a time."""
    width = -(-len(pattern) // 8) * 8
    padded = np.zeros(width, dtype=np.uint8)
    padded[:len(pattern)] = np.frombuffer(pattern, dtype=np.uint8)
    mask = np.zeros(width, dtype=np.uint8)
    mask[:len(pattern)] = 255
    words = _windows(np, buf, np.asarray(at), width).view(np.uint64)
    return ~np.any((words ^ padded.view(np.uint64)) & mask.view(np.uint64), axis=1)


def _gather_numbers(np: Any, buf: Any, value_starts: Any, value_ends: Any) -> Any:
    """The values at buf[start:end] (rows x fields) as float64, or None if any is not a number.

    Each value's text is cut out in a fixed-width window, padded with spaces and ended with
    a comma, and all of them are parsed as one JSON array in a single call (orjson when
    installed; it refuses NaN and Infinity, so json then).
    """
    lengths = (value_ends - value_starts).ravel()
    if not len(lengths) or lengths.min() < 1 or lengths.max() >= _BLOCK_PAD:
        return None
    width = -(-(int(lengths.max()) + 1) // 8) * 8
    text = _windows(np, buf, value_starts.ravel(), width)
    columns = np.arange(width)
    text = np.where(columns < lengths[:, None], text, np.uint8(32))
    text[np.arange(len(lengths)), lengths] = 44
    text = text.ravel()
    text[len(text) - width + int(lengths[-1])] = 93
    data = b"[" + text.tobytes()
    values = None
    for loads in _array_loaders():
        try:
            values = loads(data)
            break
        except ValueError:
            continue
    if values is None or len(values) != len(lengths):
        return None
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array.reshape(value_starts.shape) if array.ndim == 1 else None


def _array_loaders() -> list[Any]:
    try:
        import orjson
    except ImportError:
        return [json.loads]
    return [orjson.loads, json.loads]


def read_tail(path: Path, max_bytes: int) -> tuple[list[bytes], bool]:
    """(lines of the last `max_bytes` of a file, whether the start was cut off); ([], False) if missing.

    A cut first line is dropped, so every line returned is whole but for a trailing partial one.
    Other read errors propagate, for the caller to report.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except FileNotFoundError:
        return [], False
    lines = data.split(b"\n")
    cut = size > max_bytes
    return (lines[1:] if cut else lines), cut


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
    health_dir = property(lambda self: self.path / "health")

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints_dir / f"step-{step:08d}.pt"

    def alignment_path(self, step: int) -> Path:
        return self.alignments_dir / f"step-{step:08d}.npy"

    def mel_path(self, step: int) -> Path:
        return self.mels_dir / f"step-{step:08d}.npy"

    def sample_path(self, step: int) -> Path:
        return self.samples_dir / f"step-{step:08d}.wav"

    def health_folder(self, step: int) -> Path:
        """Renderings of the held-out sentences for one checkpoint: `<nn>.wav`, `<nn>.npy` (alignment)."""
        return self.health_dir / f"step-{step:08d}"

    def health_result_path(self, step: int) -> Path:
        """The health worker's result for one checkpoint, until the trainer records it in metrics.jsonl."""
        return self.health_dir / f"step-{step:08d}.json"

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

    def read_status(self) -> dict[str, Any] | None:
        try:
            status = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):  # missing, unreadable, junk
            return None
        return status if isinstance(status, dict) else None

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into status.json (atomically) and stamp `updated_at`."""
        status = self.read_status() or {}
        status.update(fields)
        status["updated_at"] = time.time()
        atomic_write_json(self.status_path, status)
        return status

    def force_status(self, **fields: Any) -> dict[str, Any]:
        """`write_status`, falling back to rewriting status.json in place when that fails.

        For the last word of a dying trainer: on a full disk the atomic write's new file finds
        no space, but rewriting the old file reuses its blocks. A reader may then see a torn
        file for a moment, which it reads as no status; better than a wrong `running` forever.
        """
        try:
            return self.write_status(**fields)
        except OSError:
            status = self.read_status() or {}
            status.update(fields)
            status["updated_at"] = time.time()
            data = (json.dumps(status, indent=1, sort_keys=True) + "\n").encode("utf-8")
            fd = os.open(self.status_path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                injected = injected_write_error("status-in-place", None)
                if injected is not None:
                    raise injected
                os.write(fd, data)
                os.ftruncate(fd, len(data))
                os.fsync(fd)
            finally:
                os.close(fd)
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
