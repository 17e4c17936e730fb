"""voxtop in a real terminal: tmux runs the installed `voxtop`, send-keys drives it, capture-pane reads it."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from conftest import DEMO, ROOT

VOXTOP = ROOT / ".venv" / "bin" / "voxtop"
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None or not VOXTOP.exists(),
                                reason="needs tmux and the .venv voxtop script")


class Tmux:
    """One tmux server on a private socket, so the user's sessions are never touched."""

    def __init__(self, socket: str):
        self.socket = socket

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=10).stdout

    def start(self, command: str, width: int = 100, height: int = 30) -> None:
        self("new-session", "-d", "-s", "vx", "-x", str(width), "-y", str(height), command)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "vx")

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "vx", *keys)

    def wait_for(self, predicate: Callable[[str], bool], timeout_s: float = 20.0) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never matched; last screen:\n{screen}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return "vx" in self("list-sessions", "-F", "#{session_name}")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    server = Tmux(f"voxtop-test-{os.getpid()}-{tmp_path.name}")
    yield server
    server("kill-server")


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    datasets = tmp_path / "datasets"
    shutil.copytree(DEMO, datasets / "demo", ignore=shutil.ignore_patterns(".voxtop"))
    return datasets, tmp_path / "runs"


def voxtop_command(datasets: Path, runs: Path) -> str:
    # `exec` so the pane ends (and the session with it) when voxtop exits
    return f"cd {ROOT} && exec {VOXTOP} --datasets {datasets} --runs {runs}"


def test_open_browse_datasets_and_quit(tmux: Tmux, folders: tuple[Path, Path]) -> None:
    datasets, runs = folders
    tmux.start(voxtop_command(datasets, runs))
    tmux.wait_for(lambda s: "No runs yet" in s)
    tmux.keys("n")
    screen = tmux.wait_for(lambda s: "clips        150" in s)
    assert "total        0:05:30" in screen and "WARNING" in screen
    tmux.keys("Enter")
    tmux.wait_for(lambda s: "parameters" in s and "Batch size" in s)
    tmux.keys("Escape")
    tmux.wait_for(lambda s: "datasets in" in s)
    tmux.keys("Escape")
    tmux.wait_for(lambda s: "No runs yet" in s)
    tmux.keys("q")
    deadline = time.monotonic() + 10
    while tmux.alive():
        assert time.monotonic() < deadline, "voxtop did not quit on q"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("trainer.__main__") is None, reason="the trainer is not written yet")
def test_real_tiny_run_is_followed_and_survives_quitting(tmux: Tmux, folders: tuple[Path, Path]) -> None:
    """Start a tiny CPU run, watch its progress move in the Monitor, quit, reopen: still going."""
    from trainer import config as config_mod
    from trainer.launch import prepare_run, start_detached, stop
    from trainer.rundir import RunDir

    datasets, runs = folders
    config = config_mod.Config()
    config.data.dataset = str(datasets / "demo")
    config.model.preset = "tiny"
    config.train.epochs = 1000
    config.train.batch_size = 8
    config.train.log_every_steps = 1
    config.checkpoint.every_steps = 5
    config.device.accelerator = "cpu"
    run: RunDir = prepare_run(runs, config, "e2e")
    start_detached(run)
    try:
        tmux.start(voxtop_command(datasets, runs))
        tmux.wait_for(lambda s: "e2e_" in s)
        tmux.keys("Enter")
        first = tmux.wait_for(lambda s: "RUNNING" in s and "step " in s, timeout_s=120)
        tmux.wait_for(lambda s: s.split("\n")[1] != first.split("\n")[1], timeout_s=120)  # progress moved
        tmux.wait_for(lambda s: "alignment · step" in s, timeout_s=240)
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "Runs · folder" in s)
        tmux.keys("q")
        deadline = time.monotonic() + 10
        while tmux.alive():
            assert time.monotonic() < deadline, "voxtop did not quit on q"
            time.sleep(0.1)
        assert run.effective_state() in ("running", "starting")  # quitting the TUI never stops the run
        tmux.start(voxtop_command(datasets, runs))
        tmux.wait_for(lambda s: "running" in s and "e2e_" in s)
    finally:
        stop(run)
        deadline = time.monotonic() + 60
        while run.is_locked() and time.monotonic() < deadline:
            time.sleep(0.2)
        if run.is_locked():
            stop(run, kill=True)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("trainer.__main__") is None, reason="the trainer is not written yet")
def test_a_run_launched_from_the_form_trains_and_stops_with_a_checkpoint(tmux: Tmux,
                                                                          folders: tuple[Path, Path]) -> None:
    """The whole path a user takes: n, the demo dataset, the form, ctrl+l, the Monitor, s, y."""
    from trainer.rundir import RunDir, read_metrics
    from trainer.launch import stop

    datasets, runs = folders
    tmux.start(voxtop_command(datasets, runs), width=140, height=40)
    tmux.wait_for(lambda s: "No runs yet" in s)
    tmux.keys("n")
    tmux.wait_for(lambda s: "clips        150" in s)
    tmux.keys("Enter")
    form = tmux.wait_for(lambda s: "parameters" in s and "Estimates" in s and "steps/epoch" in s, timeout_s=30)
    no_gpu = "No GPU found" in form  # then the form has switched the preset to tiny
    tmux.keys("C-l")
    tmux.wait_for(lambda s: "RUNNING" in s and "step " in s, timeout_s=180)
    found = [p for p in runs.iterdir() if p.is_dir()]
    assert len(found) == 1 and found[0].name.startswith("demo_")
    run = RunDir(found[0])
    try:
        if no_gpu:
            assert 'preset = "tiny"' in run.config_path.read_text()
        trained = tmux.wait_for(lambda s: re.search(r"step [1-9]\d*/\d+", s) is not None, timeout_s=240)
        assert "RUNNING" in trained  # at least one optimiser step done, shown in the progress line
        tmux.keys("s")
        tmux.wait_for(lambda s: "Stop demo_" in s)
        tmux.keys("y")
        tmux.wait_for(lambda s: "STOPPED" in s, timeout_s=240)
        assert run.read_status()["state"] == "stopped"
        assert run.checkpoints(), "stopping saves a checkpoint"
        ends = [r for r in read_metrics(run.metrics_path) if r["kind"] == "end"]
        assert ends and ends[-1]["reason"] == "stopped"
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "Runs · folder" in s and "stopped" in s)
    finally:
        if run.is_locked():
            stop(run, kill=True)
