"""Fault injection for tests and bench/kill_soak.py: writes that fail as a disk filling up does."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

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
