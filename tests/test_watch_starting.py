"""`voxtop watch` on a run whose trainer died while starting: it exits 1 as stale, never waits forever."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import tiny_config, voxtop


def _starting_run(tmp_path: Path, pid: int, age_s: float = 0.0):
    from trainer import config as cfg
    from trainer.launch import prepare_run

    run = prepare_run(tmp_path / "runs", cfg.load(tiny_config(tmp_path)), "starting")
    run.write_status(state="starting", pid=pid, pgid=pid)  # no trainer holds the lock
    if age_s:
        status = run.read_status()
        status["updated_at"] = time.time() - age_s
        run.status_path.write_text(__import__("json").dumps(status))
    return run


def test_watch_a_trainer_killed_while_starting_exits_1_as_stale(tmp_path: Path) -> None:
    """Killed from the shell while the TUI that launched it is open: the trainer is a zombie until reaped."""
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        os.kill(child.pid, signal.SIGKILL)
        time.sleep(0.2)  # not reaped: a zombie, which `kill -0` still finds
        run = _starting_run(tmp_path, child.pid)
        started = time.monotonic()
        result = voxtop("watch", str(run.path), "--interval", "0.2", runs=tmp_path, timeout=60)
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout.splitlines()[-1].startswith(f"voxtop: run {run.name} stale:")
        assert time.monotonic() - started < 30
    finally:
        child.wait()


def test_watch_a_starting_run_whose_pid_belongs_to_another_program_exits_1(tmp_path: Path) -> None:
    """Minutes after `starting` and still no trainer on the lock: the live pid is someone else's."""
    other = subprocess.Popen(["sleep", "60"])
    try:
        run = _starting_run(tmp_path, other.pid, age_s=600)
        result = voxtop("watch", str(run.path), "--interval", "0.2", runs=tmp_path, timeout=60)
        assert result.returncode == 1 and " stale:" in result.stdout.splitlines()[-1]
    finally:
        other.kill()
        other.wait()
