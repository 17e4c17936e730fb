"""A line in a run's train.log from voxtop itself, when the trainer cannot write one (it was killed)."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

_noted: set[tuple[str, int]] = set()  # (run folder, pid) already explained: one line per killed trainer
_lock = threading.Lock()


def note_in_log(run: Any, text: str, pid: int | None = None) -> bool:
    """Append `HH:MM:SS text` to `run`'s train.log, once per trainer `pid`; False if already noted or unwritable."""
    with _lock:
        if pid is not None:
            key = (str(run.path), int(pid))
            if key in _noted:
                return False
            _noted.add(key)
    try:
        with open(run.log_path, "a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%H:%M:%S')} {text}\n")
    except OSError:
        return False
    return True


def note_exit(run: Any, pid: int, returncode: int) -> bool:
    """Explain in train.log a trainer that ended by a signal (its own last words never came); True if written."""
    if returncode >= 0:
        return False
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return note_in_log(run, f"voxtop: the trainer (pid {pid}) was ended by {name}, without saving; "
                            "checkpoints written before are safe", pid)
