"""The chart choices remembered per run, in the TUI's own state file (never in the run directory).

`$VOXTOP_STATE_DIR/charts.json`, else `$XDG_STATE_HOME/voxtop/charts.json`, else
`~/.local/state/voxtop/charts.json`: a JSON object keyed by the run folder's absolute path.
Read and written from workers only; a missing or damaged file reads as "nothing remembered".
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from trainer.rundir import atomic_write_text

STATE_FILE = "charts.json"
MAX_RUNS = 500  # the oldest choices are forgotten past this many runs
_lock = threading.Lock()


def state_path() -> Path:
    """Where the TUI keeps its chart choices."""
    folder = os.environ.get("VOXTOP_STATE_DIR")
    if folder:
        return Path(folder) / STATE_FILE
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "voxtop" / STATE_FILE


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _key(run_path: Path) -> str:
    return str(Path(run_path).resolve())


def load_choice(run_path: Path) -> dict[str, Any]:
    """What was chosen for this run's charts (empty when nothing)."""
    choice = _read(state_path()).get(_key(run_path))
    return choice if isinstance(choice, dict) else {}


def save_choice(run_path: Path, **choice: Any) -> None:
    """Remember `choice` (merged into what was remembered) for this run."""
    path = state_path()
    with _lock:
        data = _read(path)
        key = _key(run_path)
        merged = {**(data.pop(key, None) or {}), **choice}
        data[key] = merged  # newest last, so the oldest go first
        while len(data) > MAX_RUNS:
            data.pop(next(iter(data)))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=1))


def metrics_choice(choice: dict[str, Any], key: str = "charts") -> tuple[tuple[str, ...], ...] | None:
    """The remembered metrics per chart, as tuples, or None when there are none (or they are damaged)."""
    charts = choice.get(key)
    if not isinstance(charts, list) or not all(isinstance(c, list) and all(isinstance(m, str) for m in c)
                                               for c in charts):
        return None
    return tuple(tuple(c) for c in charts)
