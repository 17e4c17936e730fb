"""metrics.index: where each line of metrics.jsonl is, and its chart numbers.

metrics.jsonl stays the record of truth; metrics.index lets a reader attach to a run of
a million records without parsing 350 MB of JSON. After a 16-byte header, one 40-byte
row per record, in file order: byte offset and length (newline included) of the line,
kind (1 train, 2 val, 0 any other), then step, loss and attention_score as float64
(NaN where absent). The writer keeps it for runs it starts; a reader trusts only the
rows that agree with metrics.jsonl and parses the rest of the file as before.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from trainer.rundir.files import open_regular, read_regular_bytes
from trainer.rundir.names import INDEX_FILE
from trainer.rundir.records import as_float, parse_record

if TYPE_CHECKING:
    from trainer.rundir.columns import MetricsColumns

INDEX_HEADER = b"VOXMIDX1" + struct.pack("<II", 40, 0)
INDEX_ROW = struct.Struct("<qiiddd")
INDEX_KINDS = {"train": 1, "val": 2}
INDEX_FIELDS = ("step", "loss", "attention_score")
INDEX_REPAIR_BYTES = 4 * 2**20  # at most this much unindexed metrics.jsonl is indexed on open


def index_path(metrics_path: Path) -> Path:
    """The index beside a metrics file."""
    return Path(metrics_path).with_name(INDEX_FILE)


def index_row(offset: int, line: bytes, record: dict[str, Any]) -> bytes:
    """The index row of `record`, whose `line` starts at byte `offset` of metrics.jsonl."""
    return INDEX_ROW.pack(offset, len(line), INDEX_KINDS.get(record.get("kind"), 0),  # type: ignore[arg-type]
                          *(as_float(record.get(name)) for name in INDEX_FIELDS))


def index_rows(data: bytes, offset: int = 0) -> Iterator[bytes]:
    """The index rows of the complete records in `data`, a part of metrics.jsonl from `offset`
    (a partial last line has none: the next record starts after a newline, see MetricsWriter)."""
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            return
        record = parse_record(line)
        if record is not None:
            yield index_row(offset, line, record)
        offset += len(line)


def index_covers(fields: dict[str, tuple[str, ...]]) -> bool:
    """Whether the index holds every number asked for (the chart kinds and fields only)."""
    return all(kind in INDEX_KINDS and set(names) <= set(INDEX_FIELDS) for kind, names in fields.items())


def index_dtype(np: Any) -> Any:
    """The numpy dtype of one index row."""
    return np.dtype([("offset", "<i8"), ("length", "<i4"), ("kind", "<i4"),
                     *((name, "<f8") for name in INDEX_FIELDS)])


def _same_number(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def read_index(np: Any, metrics_path: Path, size: int, out: MetricsColumns) -> tuple[int, int] | None:
    """Take the lines metrics.index covers from it into `out`: (byte offset after them, malformed lines), or None.

    Only the rows that cover the file from its first byte without a gap are taken (a
    line written by someone else, or junk, ends the covered part there); spot checks of
    nine lines spread over that part that disagree with their rows make the whole index
    unused (the file is parsed instead). Records other than the chart kinds and the
    newest lines of each chart kind are read by their offsets, and so is a chart row whose
    step is not a whole number or whose loss is not finite, for `parse_record` to judge.
    """
    try:
        raw = read_regular_bytes(index_path(metrics_path))
    except OSError:
        return None
    if not raw.startswith(INDEX_HEADER):
        return None
    dtype = index_dtype(np)
    rows = np.frombuffer(raw, dtype=dtype, count=(len(raw) - len(INDEX_HEADER)) // dtype.itemsize,
                         offset=len(INDEX_HEADER))
    ends = rows["offset"] + rows["length"]
    inside = ends <= size
    n = len(rows) if inside.all() else int(np.argmin(inside))
    if not n:
        return None
    rows, ends = rows[:n], ends[:n]
    gaps = np.flatnonzero(rows["offset"][1:] != ends[:-1])
    if len(gaps):
        n = int(gaps[0]) + 1
        rows, ends = rows[:n], ends[:n]
    if rows["offset"][0] != 0 or rows["length"].min() < 2:
        return None
    with open_regular(metrics_path) as handle:
        fd = handle.fileno()

        def line(i: int) -> bytes:
            return os.pread(fd, int(rows["length"][i]), int(rows["offset"][i]))

        for i in sorted(set(np.linspace(0, n - 1, 9).astype(np.int64).tolist())):
            data = line(i)
            record = parse_record(data) if data.endswith(b"\n") else None
            if record is None or INDEX_KINDS.get(record["kind"], 0) != rows["kind"][i] or not all(
                    _same_number(as_float(record.get(name)), float(rows[name][i])) for name in INDEX_FIELDS):
                return None
        others = []
        # kinds the reader drops are skipped unparsed: MetricsWriter writes `"kind"` second, near the start
        skip = tuple(f'"kind": "{kind}"'.encode() for kind in out.drop if kind not in INDEX_KINDS)
        for i in np.flatnonzero(rows["kind"] == 0).tolist():
            data = line(i)
            if skip and any(mark in data[:48] for mark in skip):
                continue
            record = parse_record(data)
            if record is None:
                return None  # not the line the row says: trust none of it
            others.append((i, record))
        steps = rows["step"]
        suspect = (rows["kind"] != 0) & ~(np.isfinite(steps) & (steps == np.floor(steps)) & np.isfinite(rows["loss"]))
        dropped = [i for i in np.flatnonzero(suspect).tolist() if parse_record(line(i)) is None]
        for kind, names in out.fields.items():
            picked = np.flatnonzero(rows["kind"] == INDEX_KINDS[kind])
            if dropped:
                picked = np.setdiff1d(picked, np.asarray(dropped, dtype=picked.dtype), assume_unique=True)
            part = {"line": picked.astype(np.float64)}
            part.update({name: rows[name][picked].astype(np.float64) for name in names})
            tail_rows = picked[-out.tail:].tolist() if out.tail else []
            out.add(kind, part, [(i, line(i)) for i in tail_rows])
    for i, record in others:
        out.records.append(record)
        out.record_lines.append(i)
    out.lines = n
    return int(ends[-1]), len(dropped)
