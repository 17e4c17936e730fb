"""`voxtop launch` in a real terminal: launch a small Python trainer and follow it, lose the terminal, come back,
stop it: the trainer outlives the terminal, saves on the stop's SIGINT, and the run ends `stopped`."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from conftest import ROOT
from test_tmux import VOXTOP, Tmux, pytestmark, tmux  # noqa: F401 (tmux: the fixture; pytestmark: needs tmux)
from trainer.launch import stop
from trainer.rundir import RunDir

FAKE = ROOT / "tests" / "foreign" / "fake_trainer.py"


def test_launch_quit_reattach_and_stop(tmux: Tmux, tmp_path: Path) -> None:  # noqa: F811
    runs, logdir = tmp_path / "runs", tmp_path / "logs"
    launch = (f"{VOXTOP} --runs {runs} launch --name fake --logdir {logdir} -- "
              f"{shlex.quote(sys.executable)} {FAKE} {logdir} --step-s 0.1")
    watch = f"{VOXTOP} --runs {runs} watch --lines 5 \"$(ls {runs})\""
    tmux.start(f"cd {ROOT} && {launch} && exec {watch}")
    tmux.wait_for(lambda s: "launched fake_" in s or "step 10: saved checkpoint_10.pth" in s)
    tmux.wait_for(lambda s: "step 20: saved checkpoint_20.pth" in s)
    [folder] = list(runs.iterdir())
    run = RunDir(folder)

    tmux("kill-server")  # the terminal is gone (an SSH drop, a closed pane): the watcher with it
    time.sleep(1.0)
    assert run.effective_state() == "running"  # the trainer is not
    step_before = len(list(logdir.glob("checkpoint_*.pth")))
    time.sleep(1.5)
    assert len(list(logdir.glob("checkpoint_*.pth"))) > step_before  # still training

    # re-attach; the pane stays after watch exits, so its last lines can be read
    tmux.start(f"cd {ROOT} && {VOXTOP} --runs {runs} watch --lines 3 {folder.name}; sleep 60")
    tmux.wait_for(lambda s: "saved checkpoint_" in s)
    assert stop(run)  # the Monitor's stop: SIGTERM to the supervisor, which passes SIGINT to the trainer
    screen = tmux.wait_for(lambda s: f"voxtop: run {folder.name} stopped" in s)
    assert "interrupted at step" in screen and "SIGINT" in screen
    status = run.read_status()
    assert status["state"] == "stopped" and status["exit_code"] == 0
    assert any(p.read_text() == "saved on Ctrl-C" for p in logdir.glob("checkpoint_*.pth"))


def test_launched_run_in_the_tui_quit_reopen_and_stop(tmux: Tmux, tmp_path: Path) -> None:  # noqa: F811
    """The same through the TUI: listed running, quit, open voxtop again, its Monitor's s key stops it."""
    import subprocess

    runs, logdir = tmp_path / "runs", tmp_path / "logs"
    launched = subprocess.run([str(VOXTOP), "--runs", str(runs), "launch", "--name", "fake", "--logdir", str(logdir),
                               "--", sys.executable, str(FAKE), str(logdir), "--step-s", "0.1"],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert launched.returncode == 0, launched.stderr
    [folder] = list(runs.iterdir())
    run = RunDir(folder)
    tui = f"cd {ROOT} && exec {VOXTOP} --runs {runs} --datasets {tmp_path}"
    try:
        tmux.start(tui, width=120, height=32)
        tmux.wait_for(lambda s: folder.name in s and "running" in s)
        tmux.keys("q")
        deadline = time.monotonic() + 10
        while tmux.alive():
            assert time.monotonic() < deadline, "voxtop did not quit on q"
            time.sleep(0.1)
        assert run.effective_state() == "running"  # quitting voxtop never stops the run

        tmux.start(tui, width=120, height=32)  # come back
        tmux.wait_for(lambda s: folder.name in s and "running" in s)
        tmux.keys("Enter")
        tmux.wait_for(lambda s: "RUNNING" in s and "saved checkpoint_" in s, timeout_s=30)  # its Monitor and log
        tmux.keys("s")
        tmux.wait_for(lambda s: "Stop" in s and folder.name in s)
        tmux.keys("y")
        tmux.wait_for(lambda s: "interrupted at step" in s, timeout_s=30)
        deadline = time.monotonic() + 30
        while (run.read_status() or {}).get("state") != "stopped":
            assert time.monotonic() < deadline, run.read_status()
            time.sleep(0.2)
        assert run.read_status()["exit_code"] == 0
    finally:
        if run.is_locked():
            stop(run, kill=True)
