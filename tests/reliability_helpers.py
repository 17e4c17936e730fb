"""Kill a real trainer at chosen moments and check what it leaves: used by tests and bench/kill_soak.py.

One run directory is killed and resumed again and again; after each SIGKILL every
checkpoint the listing offers must load, metrics.jsonl must read without malformed lines,
every record up to the newest checkpoint's step must be there, and the run must read as
`stale`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import wait_for
from trainer.rundir import TEMP_MARK, MetricsReader, RunDir, current_history

#: The moments a kill aims at. `random`: a seeded delay after the trainer's `start` record;
#: `checkpoint_write`: as soon as a checkpoint temp file appears; `rotation`: as soon as the
#: alignment record (written right before rotation) of a checkpoint appears.
MODES = ("random", "checkpoint_write", "rotation")


@dataclass
class KillReport:
    """What one kill left behind."""

    mode: str
    delay_s: float
    resumed_from: int | None
    checkpoints: list[int]
    temp_files: list[str]
    records_lost: list[int] = field(default_factory=list)
    malformed: int = 0
    trailing_partial: bool = False
    state: str = ""


def temp_files(run: RunDir) -> list[str]:
    """Every half-written temp file anywhere in the run directory."""
    return sorted(str(p.relative_to(run.path)) for p in run.path.rglob(f".*{TEMP_MARK}*"))


def start_records(run: RunDir) -> list[dict[str, Any]]:
    return [r for r in MetricsReader(run.metrics_path).read_new() if r["kind"] == "start"]


def wait_until(predicate: Any, timeout_s: float, interval_s: float = 0.01) -> Any:
    return wait_for(predicate, timeout=timeout_s, interval=interval_s)


def _alignment_count(run: RunDir) -> int:
    return sum(1 for r in MetricsReader(run.metrics_path).read_new() if r["kind"] == "alignment")


def kill_once(run: RunDir, mode: str, rng: random.Random, max_delay_s: float = 4.0,
              timeout_s: float = 300.0) -> KillReport:
    """Start (or resume) the trainer on `run`, SIGKILL its process group at a `mode` moment, check."""
    from trainer.launch import start_detached

    starts_before = len(start_records(run))
    alignments_before = _alignment_count(run)
    process = start_detached(run)
    delay = 0.0
    try:
        wait_until(lambda: len(start_records(run)) > starts_before or process.poll() is not None, timeout_s,
                   interval_s=0.05)
        assert process.poll() is None, f"the trainer exited with {process.returncode}; see {run.log_path}"
        start = start_records(run)[-1]
        if mode == "random":
            delay = rng.uniform(0.0, max_delay_s)
            time.sleep(delay)
        elif mode == "checkpoint_write":
            wait_until(lambda: any(e.name.startswith(".step-") for e in os.scandir(run.checkpoints_dir))
                       or process.poll() is not None, timeout_s, interval_s=0.002)
        elif mode == "rotation":
            wait_until(lambda: _alignment_count(run) > alignments_before or process.poll() is not None,
                       timeout_s, interval_s=0.002)
        else:
            raise ValueError(mode)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    finally:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=60)
    report = KillReport(mode, delay, start.get("resumed_from"), [c.step for c in run.checkpoints()],
                        temp_files(run))
    check_after_kill(run, report)
    return report


def check_after_kill(run: RunDir, report: KillReport) -> None:
    """Fill `report` with what a user would find after the kill (loads every listed checkpoint)."""
    from trainer import checkpoints as ckpt

    for found in run.checkpoints():
        payload = ckpt.load(found.path)  # weights_only=True; raises on a torn file
        assert payload["progress"]["step"] == found.step, found.path
    reader = MetricsReader(run.metrics_path)
    records = reader.read_new()
    report.malformed = reader.malformed
    report.trailing_partial = bool(reader._partial)
    history = current_history(records)
    newest = report.checkpoints[-1] if report.checkpoints else 0
    train_steps = {r["step"] for r in history if r["kind"] == "train"}
    report.records_lost = sorted(set(range(1, newest + 1)) - train_steps)
    report.state = run.effective_state()


def new_kill_run(runs_root: Path, config_path: Path) -> RunDir:
    """A fresh run of `config_path` (make it checkpoint every step, keep two, never finish)."""
    from trainer import config as config_mod
    from trainer.launch import prepare_run

    return prepare_run(runs_root, config_mod.load(config_path), "kill")


def run_command(args: list[str], cwd: Path, timeout_s: float, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, **(env or {})})
