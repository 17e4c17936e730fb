"""The names of the run contract: run names, file names inside a run, states and timings."""

from __future__ import annotations

import math
import re
from datetime import datetime

RUN_PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]+$")
CHECKPOINT_RE = re.compile(r"^step-(\d{8})\.pt$")
ACTIVE_STATES = ("starting", "running", "stopping")
FINAL_STATES = ("finished", "stopped", "failed")
HEARTBEAT_S = 5.0
#: A heartbeat older than this (twelve beats missed) means the trainer is not responding.
STALE_AFTER_S = 60.0
#: A `starting` run whose trainer holds no lock yet is given this long from its last status write,
#: while the process it names lives: python and torch take seconds to import.
STARTING_GRACE_S = 120.0

CONFIG_FILE = "config.toml"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
INDEX_FILE = "metrics.index"
LOG_FILE = "train.log"
LOCK_FILE = "trainer.lock"
#: Marks a temp file beside its final name (`.<name>.tmp-<pid>`): never listed, removed on the next start.
TEMP_MARK = ".tmp-"


class RunError(Exception):
    """A run directory that cannot be used as asked; the message says why and what to do."""


#: The longest run-name prefix: the folder name adds `_YYYYmmdd_HHMMSS` and the files in it their own
#: names, and every part of a path must stay well under the file system's 255 bytes.
MAX_RUN_PREFIX = 100


def check_run_prefix(prefix: str) -> str:
    """The prefix if it is a safe run-name part; RunError otherwise.

    Only `[A-Za-z0-9._-]`, at most MAX_RUN_PREFIX characters, and no leading dot: a dot folder
    would be a hidden run that no listing shows.
    """
    if not prefix or not RUN_PREFIX_RE.match(prefix) or prefix in (".", ".."):
        shown = prefix if len(prefix) <= 60 else prefix[:57] + "..."
        raise RunError(f"run name {shown!r} is not allowed: use only letters, digits, '.', '_' and '-'")
    if prefix.startswith("."):
        raise RunError(f"run name {prefix[:60]!r} is not allowed: it cannot start with '.' (the run would be hidden)")
    if len(prefix) > MAX_RUN_PREFIX:
        raise RunError(f"run name {prefix[:40]!r}... is {len(prefix)} characters long; use at most {MAX_RUN_PREFIX}")
    return prefix


def new_run_name(prefix: str, now: datetime | None = None) -> str:
    """`<prefix>_<YYYYmmdd_HHMMSS>`, the name of a new run folder."""
    return f"{check_run_prefix(prefix)}_{(now or datetime.now()).strftime('%Y%m%d_%H%M%S')}"


def step_file_name(step: int, suffix: str) -> str:
    """`step-00000300.pt`: the name of a per-checkpoint file (checkpoint, alignment, mel, sample, health)."""
    return f"step-{step:08d}{suffix}"


def hms(seconds: float | None) -> str:
    """A duration as h:mm:ss (train.log's ETA, dataset sizes, estimates), rounded to the second; `?` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    total = int(round(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"
