"""Filesystem faults: injected for tests and bench/kill_soak.py, and described for people when real.

`describe_os_error` is the one way an OSError becomes a sentence: what failed, which path, what to
do. The CLI, the trainer's failure record and the run listing all use it.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from trainer.rundir.files import NotRegularFile
from trainer.rundir.names import STATUS_FILE

_STEP_FILE_RE = re.compile(r"^step-(\d+)\.")
_FOLDER_KINDS = {"checkpoints": "checkpoint", "alignments": "alignment", "mels": "mel", "samples": "sample"}

#: Fault injection for tests and bench/kill_soak.py: `KIND:ERRNO[@STEP]`, comma-separated, e.g.
#: `checkpoint:ENOSPC@6,metrics:EIO@6`. Writes of that kind (checkpoint, alignment, mel,
#: sample, metrics, status, other) for step >= STEP fail with that errno after writing half
#: their bytes, as a disk that fills up does. Read here and nowhere else.
INJECT_WRITE_ERROR_ENV = "VOXTOP_INJECT_WRITE_ERROR"


def kind_of(path: Path) -> tuple[str, int | None]:
    """(file kind, step) of a run-directory file, for fault injection."""
    if path.name == STATUS_FILE:
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


def describe_os_error(exc: OSError, doing: str = "using", resume: str | None = None) -> str:
    """An OSError as a sentence: what failed, on which path, and what to do (`resume` names the run
    to resume once the disk has room again).

    `disk full writing runs/x/checkpoints/step-00000004.pt (No space left on device): free space on
    the disk, then `voxtop resume x``.
    """
    where = f" {exc.filename}" if exc.filename else ""
    if exc.filename2:
        where += f" -> {exc.filename2}"
    reason = exc.strerror or str(exc) or type(exc).__name__
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        then = f", then `voxtop resume {resume}`" if resume else ", then try again"
        return f"disk full writing{where} ({reason}): free space on the disk{then}"
    if isinstance(exc, NotRegularFile):
        return f"{where.strip()} {reason}: nothing of voxtop's is ever such a file; move it away"
    if code == errno.EROFS:
        return f"read-only file system: cannot write{where} ({reason}); choose a writable folder (--runs) or remount it"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied {doing}{where} ({reason}): fix its permissions (ls -ld, chmod) or use another folder"
    if code == errno.ELOOP:
        return f"{where.strip() or 'a path'} is a symbolic link loop ({reason}): point the link at a real file"
    if code == errno.ENAMETOOLONG:
        shown = where.strip()
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return f"file name too long {doing} {shown} ({reason}): use a shorter name"
    if code == errno.EIO:
        return f"input/output error {doing}{where} ({reason}): the disk may be failing; copy what matters elsewhere"
    if code == errno.ENOENT:
        return f"no such file or folder{where} ({reason})"
    if code == errno.ENOTDIR:
        return f"not a folder:{where} ({reason})"
    return f"{reason} {doing}{where}"
