"""The metrics writer: metrics.jsonl, one JSON record per line, and its metrics.index rows."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from trainer.rundir.faults import injected_write_error
from trainer.rundir.index import INDEX_HEADER, INDEX_REPAIR_BYTES, INDEX_ROW, index_path, index_row, index_rows


class MetricsWriter:
    """Appends one JSON record per line to metrics.jsonl, one write(2) per line.

    No user-space buffer: a record is in the kernel when `write` returns, so SIGKILL loses
    nothing already written, and a failed write (disk full, I/O error) is cut back off the
    file, so the next record starts on a fresh line instead of after half a line. Each
    record also gets its row in metrics.index (see `trainer.rundir.index`) when the run has one.
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
        """Append one record (stamped with `t`) and its index row; returns the record."""
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
                os.write(self._index, index_row(offset, body, record))
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
        """fsync metrics.jsonl."""
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        """Close metrics.jsonl and its index."""
        self._close_index()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

