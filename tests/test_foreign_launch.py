"""`voxtop launch`: a command detached in its own session, its status and exit code, stop by SIGINT then SIGTERM,
its curves and checkpoints from --logdir; `voxtop runs`, `checkpoints` and `watch` on it and on other trainers' folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from trainer.foreign.launched import LaunchedRun
from trainer.launch import stop
from trainer.rundir import RunDir
from trainer.rundir.source import list_sources, open_run

FAKE = ROOT / "tests" / "foreign" / "fake_trainer.py"
VOXTOP = [sys.executable, "-m", "tui.cli"]


def voxtop(runs: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VOXTOP, "--runs", str(runs), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def launched(runs: Path, logdir: Path, *fake_args: str, name: str = "fake") -> RunDir:
    result = voxtop(runs, "launch", "--name", name, "--logdir", str(logdir), "--", sys.executable, str(FAKE),
                    str(logdir), *fake_args)
    assert result.returncode == 0, result.stderr
    [folder] = [p for p in runs.iterdir() if p.name.startswith(f"{name}_")]
    return RunDir(folder)


def wait_for(predicate, timeout_s: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_launch_runs_detached_and_finishes_with_its_exit_code(tmp_path: Path) -> None:
    runs, logdir = tmp_path / "runs", tmp_path / "logs"
    run = launched(runs, logdir, "--steps", "30", "--step-s", "0.01")
    wait_for(lambda: (run.read_status() or {}).get("state") == "finished")
    status = run.read_status()
    assert status["exit_code"] == 0 and status["error"] is None
    assert "done" in run.log_path.read_text()
    spec = json.loads((run.path / "launch.json").read_text())
    assert spec["command"] == [sys.executable, str(FAKE), str(logdir), "--steps", "30", "--step-s", "0.01"]
    assert spec["logdir"] == str(logdir.resolve())
    source = open_run(runs, run.name)
    assert isinstance(source, LaunchedRun)
    summary = source.summary()
    assert summary.state == "finished" and summary.step == 30 and summary.checkpoints == 3
    assert [row.step for row in source.checkpoint_table().rows] == [30, 20, 10]
    assert [s.name for s in list_sources(runs)] == [run.name]
    listed = voxtop(runs, "runs", "--json")
    assert json.loads(listed.stdout)[0]["state"] == "finished"


def test_a_failing_command_is_failed_with_its_exit_code(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = launched(runs, tmp_path / "logs", "--fail-at", "5", "--step-s", "0.01")
    wait_for(lambda: (run.read_status() or {}).get("state") == "failed")
    assert run.read_status()["exit_code"] == 3 and run.read_status()["error"] == "exit code 3"
    watched = voxtop(runs, "watch", run.name)
    assert watched.returncode == 1 and "something broke" in watched.stdout and "failed" in watched.stdout


def test_stop_sends_sigint_first_and_the_trainer_saves(tmp_path: Path) -> None:
    runs, logdir = tmp_path / "runs", tmp_path / "logs"
    run = launched(runs, logdir)
    wait_for(lambda: run.effective_state() == "running" and (logdir / "checkpoint_10.pth").exists())
    pid = run.read_status()["pid"]
    assert os.getsid(pid) == pid != os.getsid(0)  # its own session: a closed terminal never reaches it
    assert stop(run)
    wait_for(lambda: (run.read_status() or {}).get("state") == "stopped")
    assert run.read_status()["exit_code"] == 0
    assert "saved on Ctrl-C" in [p.read_text() for p in logdir.glob("checkpoint_*.pth")]
    assert "interrupted at step" in run.log_path.read_text()


def test_stop_falls_back_to_sigterm(tmp_path: Path) -> None:
    runs, logdir = tmp_path / "runs", tmp_path / "logs"
    result = subprocess.run([*VOXTOP, "--runs", str(runs), "launch", "--name", "stubborn", "--logdir", str(logdir),
                             "--", sys.executable, str(FAKE), str(logdir), "--ignore-sigint"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env={**os.environ, "VOXTOP_STOP_GRACE_S": "1"})
    assert result.returncode == 0, result.stderr
    [folder] = list(runs.iterdir())
    run = RunDir(folder)
    wait_for(lambda: run.effective_state() == "running" and (logdir / "checkpoint_10.pth").exists())
    assert stop(run)
    wait_for(lambda: (run.read_status() or {}).get("state") == "stopped")
    assert run.read_status()["exit_code"] == -15
    assert "SIGTERM" in run.log_path.read_text()


@pytest.mark.parametrize("args", [(), ("--", )])
def test_launch_without_a_command_is_refused(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = voxtop(tmp_path / "runs", "launch", *args)
    assert result.returncode == 1 and "nothing to launch" in result.stderr


def test_cli_reads_other_trainers_folders(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the fixtures are written with torch's SummaryWriter")
    sys.path.insert(0, str(ROOT / "tests" / "foreign"))
    import make_runs

    rvc = make_runs.write_rvc(tmp_path)
    listed = voxtop(tmp_path / "logs", "runs", "--json")
    assert [(r["name"], r["step"]) for r in json.loads(listed.stdout)] == [("myvoice", make_runs.LAST_STEP)]
    table = voxtop(tmp_path, "checkpoints", str(rvc))
    assert table.returncode == 0, table.stderr
    assert "recommended: step 3600" in table.stdout and "myvoice_12e_3600s.pth" not in table.stdout
    rows = json.loads(voxtop(tmp_path, "checkpoints", str(rvc), "--json").stdout)
    assert rows[0]["step"] == make_runs.LAST_STEP and "recommended" in next(r for r in rows if r["step"] == 3600)["tags"]
    os.utime(next(rvc.glob("events.out.*")), (time.time() - 120, time.time() - 120))
    watched = voxtop(tmp_path, "watch", str(rvc))
    assert watched.returncode == 0, watched.stderr
    assert "overtraining on loss/g/total" in watched.stdout
    assert "minimum of loss/g/mel at step 1800" in watched.stdout and "recommended: step 3600" in watched.stdout
    exported = voxtop(tmp_path, "metrics", str(rvc), "--csv", "--fields", "loss/g/kl")
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.splitlines()
    assert lines[0] == "metric,step,wall_time,value" and len(lines) == 1 + make_runs.LAST_STEP // 50
    assert lines[1].startswith("train/loss/g/kl,50,")


def test_a_launched_run_is_shown_as_its_command_line(tmp_path: Path) -> None:
    import asyncio
    import shlex

    from tui.app import create_app
    from tui.screens.monitor import MonitorScreen
    from tui_helpers import FakeSampler, wait_for as settle_until

    runs, logdir = tmp_path / "runs", tmp_path / "logs"
    run = launched(runs, logdir, "--steps", "20", "--step-s", "0.01")
    wait_for(lambda: (run.read_status() or {}).get("state") == "finished")
    command = shlex.join([sys.executable, str(FAKE), str(logdir), "--steps", "20", "--step-s", "0.01"])
    assert json.loads(voxtop(runs, "runs", "--json").stdout)[0]["command"] == command

    async def drive() -> None:
        app = create_app(tmp_path / "datasets", runs, gpu_sampler=FakeSampler, refresh_s=0.2)
        async with app.run_test(size=(200, 40)) as pilot:
            await settle_until(pilot, lambda: getattr(app.screen, "summaries", None))
            detail = str(app.screen.query_one("#run-detail").render())
            assert f"command: {command}" in detail
            await pilot.press("enter")
            await settle_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.view is not None)
            assert app.screen.view.command == command
            assert f"command: {command}" in str(app.screen.query_one("#mon-title").render())

    asyncio.run(drive())
