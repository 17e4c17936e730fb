"""status.json and the trainer's lock: what state a run is in, and that one trainer alone writes it."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from trainer.rundir.atomic import atomic_write_json
from trainer.rundir.faults import injected_write_error
from trainer.rundir.names import ACTIVE_STATES, STALE_AFTER_S, RunError


class RunStatus:
    """The status and lock half of `RunDir`: needs `path`, `status_path`, `lock_path` and `_lock_handle`."""

    path: Path
    status_path: Path
    lock_path: Path
    _lock_handle: Any

    def read_status(self) -> dict[str, Any] | None:
        """status.json as a dict; None when it is missing, unreadable or not a JSON object."""
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

    # one trainer per run ------------------------------------------------------------------

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
        """Let go of the run's lock (the kernel also does when this process ends)."""
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None
