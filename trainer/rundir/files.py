"""Opening files from disk that may be anything: only regular files are opened, never a FIFO or a device.

A FIFO named `x.wav`, `status.json` or `metrics.jsonl` would block a plain `open()` forever (the
reader waits for a writer that never comes), and a device could be read without end. The file is
opened without blocking and checked with fstat before a byte is read, so there is no window
between a check and the open for the file to be swapped.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO


class NotRegularFile(OSError):
    """A path that exists but is not a regular file (a FIFO, a folder, a device, a socket)."""


def file_kind(mode: int) -> str:
    """What a file of `mode` is, in words (`a FIFO`, `a folder`, ...)."""
    for test, words in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return words
    return "not a regular file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """`open(path, "rb")` for a regular file; NotRegularFile for anything else, without blocking."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, f"is {file_kind(mode)}, not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a regular file (`open_regular`)."""
    with open_regular(path) as handle:
        return handle.read()


def regular_file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot be read as a data file, in words (None when it is a regular file).

    `missing`, `a symbolic link loop`, `not a regular file (a FIFO (named pipe))`, or the system's
    reason (`cannot be read: Permission denied`).
    """
    try:
        mode = os.stat(Path(path)).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if exc.errno == errno.ENAMETOOLONG:
            return "a name too long for the file system"
        return f"cannot be read: {exc.strerror}"
    if not stat.S_ISREG(mode):
        return f"not a regular file ({file_kind(mode)})"
    return None
