"""Reading metrics.jsonl: incrementally by byte offset, as records or as columns, and file tails."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from trainer.rundir.files import open_regular
from trainer.rundir.columns import BLOCK_PAD, READ_CHUNK_BYTES, MetricsColumns, parse_columns
from trainer.rundir.index import index_covers, read_index
from trainer.rundir.records import current_history, parse_record


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
        """The complete records appended since the last call, in file order."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:
            self.offset, self._partial = 0, b""
        if size == self.offset:
            return []
        with open_regular(self.path) as handle:
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
            record = parse_record(line)
            if record is None:
                self.malformed += 1
            else:
                records.append(record)
        return records

    def read_new_columns(self, fields: dict[str, tuple[str, ...]], tail: int = 50,
                         drop: frozenset[str] = frozenset()) -> MetricsColumns:
        """Like `read_new`, but the records of the kinds in `fields` come back as float64 arrays.

        Attaching to a run with a million train records must take about a second, so lines
        laid out as MetricsWriter writes them are parsed with numpy in blocks of
        READ_CHUNK_BYTES, with no Python object per record (or taken from metrics.index);
        any other line goes through `parse_record` as in `read_new` (same malformed counting).
        A value that is missing or null reads as NaN. The newest `tail` records of each of
        those kinds also come back whole. Records of the kinds in `drop` are skipped.
        """
        import numpy as np

        result = MetricsColumns(fields, tail, drop)
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return result.finish()
        if size < self.offset:
            self.offset, self._partial = 0, b""
        if self.offset == 0 and not self._partial and index_covers(fields):
            self._read_index(np, size, result)
        with open_regular(self.path) as handle:
            handle.seek(self.offset)
            while self.offset < size:
                carried = len(self._partial)
                want = min(READ_CHUNK_BYTES, size - self.offset)
                block = np.empty(carried + want + BLOCK_PAD, dtype=np.uint8)
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
                self.malformed += parse_columns(np, block, ends, result)
        return result.finish()


    def _read_index(self, np: Any, size: int, out: MetricsColumns) -> None:
        """Take what metrics.index covers into `out` (`index.read_index`) and move on past it."""
        covered = read_index(np, self.path, size, out)
        if covered is not None:
            self.offset, dropped = covered
            self.malformed += dropped


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a metrics file."""
    return MetricsReader(Path(path)).read_new()


def iter_records(path: Path, kind: str | None = None) -> Iterator[dict[str, Any]]:
    """The records of a metrics file's current history (see `current_history`), of one kind if given."""
    for record in current_history(read_metrics(path)):
        if kind is None or record.get("kind") == kind:
            yield record


def read_tail(path: Path, max_bytes: int) -> tuple[list[bytes], bool]:
    """(lines of the last `max_bytes` of a file, whether the start was cut off); ([], False) if missing.

    A cut first line is dropped, so every line returned is whole but for a trailing partial one.
    Other read errors propagate, for the caller to report.
    """
    try:
        with open_regular(path) as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except FileNotFoundError:
        return [], False
    lines = data.split(b"\n")
    cut = size > max_bytes
    return (lines[1:] if cut else lines), cut
