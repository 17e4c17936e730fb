"""Atomic files: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from trainer.rundir.faults import injected_write_error, kind_of
from trainer.rundir.names import TEMP_MARK


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
            injected = injected_write_error(*kind_of(path))
            if injected is not None:  # the disk fills up halfway through this file
                handle.truncate(handle.tell() // 2)
                raise injected
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        temp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename in (None, str(temp)):
            exc.filename = str(path)  # the file people know, not the temp file beside it
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """`atomic_write` of `data`."""
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write` of `text` as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """`atomic_write` of `obj` as indented, key-sorted JSON."""
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode("utf-8"))
