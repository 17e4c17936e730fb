"""A stop says what it is doing from the moment it is asked; a killed trainer is named as such."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tui.app import Launcher, create_app
from tui_helpers import FakeLauncher, FakeRun, FakeSampler, sync, typical_run, wait_for
from test_tui_monitor import open_monitor, text


@sync
async def test_stop_says_at_once_what_happens_then_follows_the_trainer(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    launcher = FakeLauncher()
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler, launcher=launcher, refresh_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        await pilot.press("s", "y")
        # the trainer has not answered yet (status still `running`): the Monitor says what comes
        await wait_for(pilot, lambda: "STOPPING" in text(screen, "#mon-title"))
        assert "the trainer finishes its step, then saves a checkpoint" in text(screen, "#mon-title")
        assert launcher.stopped == [(fake.run.path, False)]
        fake.train(range(410, 451, 10))
        fake.status(state="stopping")
        await wait_for(pilot, lambda: "saving a checkpoint at step 450" in text(screen, "#mon-title"))
        fake.checkpoint(450, val_loss=0.7)
        await wait_for(pilot, lambda: "checkpoint saved at step 450; checking its read-through health"
                       in text(screen, "#mon-title"))
        fake.end("stopped", 450, "stopped")
        await wait_for(pilot, lambda: "STOPPED" in text(screen, "#mon-title"))
        assert "saving" not in text(screen, "#mon-title") and "last verdict:" in text(screen, "#mon-title")


@sync
async def test_a_killed_trainer_reads_as_gone_not_as_improving(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    fake.release()  # SIGKILL: the kernel frees the trainer's lock, and no end record is ever written
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        title = text(screen, "#mon-title")
        assert "NOT RESPONDING" in title and "STALE" not in title
        assert "verdict: improving" not in title.replace("last verdict: improving", "")
        assert ("the trainer (pid 12345) is gone (killed or crashed) after step 400, without a final save; "
                "checkpoints up to step 400 are safe (r: resume)") in " ".join(title.split())
        assert "trainer_gone: no end record after step 400 (killed or crashed)" in " ".join(
            text(screen, "#events").split())
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        table = app.screen.query_one("#runs")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert str(table.get_row_at(0)[1]) == "not responding"


@sync
async def test_kill_from_the_monitor_is_written_in_train_log(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler, launcher=FakeLauncher())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        await pilot.press("k", "y")
        await wait_for(pilot, lambda: "killed the trainer (pid 12345) from the Monitor" in
                       fake.run.log_path.read_text(encoding="utf-8"))
        fake.release()
        await wait_for(pilot, lambda: "killed from here" in text(screen, "#mon-title"))


def test_a_trainer_ended_by_a_signal_is_written_in_train_log(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import trainer.launch

    fake = FakeRun(tmp_path, hold_lock=False)
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    monkeypatch.setattr(trainer.launch, "start_detached", lambda run, checkpoint=None: process)
    Launcher().start(fake.run)  # the TUI's launcher reaps what it starts
    process.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while "SIGKILL" not in (fake.run.log_path.read_text(encoding="utf-8") if fake.run.log_path.exists() else ""):
        assert time.monotonic() < deadline, "no line about the kill in train.log"
        time.sleep(0.05)
    assert f"the trainer (pid {process.pid}) was ended by SIGKILL, without saving" in \
        fake.run.log_path.read_text(encoding="utf-8")
