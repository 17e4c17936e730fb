"""status.json and the trainer's lock: what state a run is in, and that one trainer alone writes it.

Whether a run's trainer is alive is judged here and only here (`effective_state`), for `voxtop runs`,
`voxtop watch`, the Runs screen and the Monitor alike: an active run is `stale` (shown as "not
responding") when no trainer holds its lock, when its heartbeat (`updated_at`, refreshed every
`heartbeat_s` = HEARTBEAT_S by a thread of the trainer) is far older than that, or when the process status.json
names is another one than the trainer it recorded (a pid reused: its start time differs).
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from trainer.rundir.atomic import atomic_write_json
from trainer.rundir.faults import injected_write_error
from trainer.rundir.files import read_regular_bytes
from trainer.rundir.names import ACTIVE_STATES, HEARTBEAT_S, STALE_AFTER_S, STARTING_GRACE_S, RunError

#: One status write at a time in a process: the heartbeat thread and the training loop both write.
_STATUS_WRITE = threading.RLock()
#: A heartbeat stamped further in the future than this (clock skew) is not believed.
FUTURE_SKEW_S = 30.0


def process_start_ticks(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat); None where
    unknown. A pid that is reused belongs to a process with another start time."""
    fields = _proc_stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def _proc_stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), None without one."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_bytes()
    except (OSError, ValueError, TypeError, OverflowError):
        return None
    return stat.rpartition(b")")[2].split()


def recorded_process_alive(status: dict[str, Any]) -> bool:
    """Whether the process status.json names (on this host) is alive, not a zombie, and the one recorded:
    its start time equals `pid_start` when that was recorded, else its command line runs the trainer."""
    pid = status.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except (OverflowError, OSError):
        return False
    fields = _proc_stat_fields(pid)
    if fields is None:
        return True  # no /proc (macOS): the signal test is all there is
    if fields[:1] == [b"Z"]:
        return False
    recorded = status.get("pid_start")
    if isinstance(recorded, int) and not isinstance(recorded, bool):
        return process_start_ticks(pid) == recorded
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"trainer" in command or b"voxtop" in command


def heartbeat_age_s(status: dict[str, Any], now: float | None = None) -> float:
    """Seconds since status.json's `updated_at`; infinite when it is missing, not a number, or stamped
    far in the future (nothing real writes that, so it proves nothing)."""
    stamp = status.get("updated_at")
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
        return math.inf
    age = (time.time() if now is None else now) - float(stamp)
    return math.inf if age < -FUTURE_SKEW_S else max(0.0, age)


def heartbeat_limit_s(status: dict[str, Any]) -> float:
    """How old the heartbeat of a live trainer may get before it counts as not responding: twelve of
    the intervals it said it beats at (`heartbeat_s`), at least STALE_AFTER_S; infinite for a trainer
    that does not say (an older voxtop's beat only between steps, so its age proves nothing)."""
    interval = status.get("heartbeat_s")
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
        return math.inf
    return max(STALE_AFTER_S, 12.0 * float(interval))


def describe_age(seconds: float) -> str:
    """`45 s`, `3 min`, `2 h 5 min`, `never`: how long ago, for people."""
    if not math.isfinite(seconds):
        return "never"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class RunStatus:
    """The status and lock half of `RunDir`: needs `path`, `status_path`, `lock_path` and `_lock_handle`."""

    path: Path
    status_path: Path
    lock_path: Path
    _lock_handle: Any

    def read_status(self) -> dict[str, Any] | None:
        """status.json as a dict; None when it is missing, unreadable, not a regular file or not a JSON object."""
        try:
            status = json.loads(read_regular_bytes(self.status_path).decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):  # missing, unreadable, junk
            return None
        return status if isinstance(status, dict) else None

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into status.json (atomically) and stamp `updated_at`."""
        with _STATUS_WRITE:
            status = self.read_status() or {}
            status.update(fields)
            status["updated_at"] = time.time()
            atomic_write_json(self.status_path, status)
            return status

    def start_heartbeat(self, interval_s: float = HEARTBEAT_S) -> threading.Event:
        """Refresh `updated_at` every `interval_s` from a daemon thread until the returned event is set.

        The training loop writes status.json too, but not while it computes features, validates or
        saves a checkpoint; this thread does, so a heartbeat far older than its interval means the
        trainer is stopped (SIGSTOP), frozen or gone, never that it is busy.
        """
        stop = threading.Event()
        self.write_status(heartbeat_s=interval_s)  # watchers judge the heartbeat only of a trainer that says it beats

        def beat() -> None:
            while not stop.wait(interval_s):
                try:
                    self.write_status()
                except Exception:  # noqa: BLE001 — a full disk must not end the trainer from here
                    pass

        threading.Thread(target=beat, name="voxtop-heartbeat", daemon=True).start()
        return stop

    def force_status(self, **fields: Any) -> dict[str, Any]:
        """`write_status`, falling back to rewriting status.json in place when that fails.

        For the last word of a dying trainer: on a full disk the atomic write's new file finds
        no space, but rewriting the old file reuses its blocks. A reader may then see a torn
        file for a moment, which it reads as no status; better than a wrong `running` forever.
        """
        try:
            return self.write_status(**fields)
        except OSError:
            with _STATUS_WRITE:
                return self._rewrite_status_in_place(fields)

    def _rewrite_status_in_place(self, fields: dict[str, Any]) -> dict[str, Any]:
        """`force_status`'s fallback: status.json rewritten in place, reusing the old file's blocks."""
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
        """The state as every watcher shows it: `stale` when an active run's trainer is gone or stuck.

        On this host: no trainer holds the lock (a `starting` run is given STARTING_GRACE_S while
        a process it names lives and is the one recorded; one that names none was never started
        or died before saying so), or one does but its heartbeat is far older than the interval it
        says it beats at (`heartbeat_limit_s`: stopped with SIGSTOP, frozen). For a run written from another host
        (shared disk) an old heartbeat alone tells.
        """
        status = status if status is not None else self.read_status()
        if not status:
            return "unknown"
        state = str(status.get("state", "unknown"))
        if state not in ACTIVE_STATES:
            return state
        age = heartbeat_age_s(status, now)
        if status.get("host") == socket.gethostname():
            if self.is_locked():
                return "stale" if age > heartbeat_limit_s(status) else state
            if state == "starting" and age < STARTING_GRACE_S and recorded_process_alive(status):
                return state
            return "stale"
        return "stale" if age > STALE_AFTER_S else state

    def stale_reason(self, status: dict[str, Any] | None = None, now: float | None = None) -> str:
        """Why a `stale` run is not responding, with its heartbeat's age, for people."""
        status = status if status is not None else (self.read_status() or {})
        age = describe_age(heartbeat_age_s(status, now))
        if status.get("host") != socket.gethostname():
            return f"not responding: last heartbeat {age} ago (on {status.get('host')})"
        if self.is_locked():
            return (f"not responding: last heartbeat {age} ago, though its trainer is still there "
                    "(stopped with SIGSTOP or frozen? `kill -CONT` it, or stop it)")
        return "the trainer is gone without saying why (killed?)"

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
