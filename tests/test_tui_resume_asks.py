"""Resuming starts a trainer: like stop, kill and delete, `r` asks first (Monitor and Runs)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from tui.app import create_app
from tui.screens.monitor import MonitorScreen
from tui_helpers import FakeLauncher, FakeSampler, sync, typical_run, wait_for


@sync
async def test_r_on_a_stale_run_in_the_monitor_asks_before_relaunching(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    fake.release()  # the trainer was killed: the run is stale
    launcher = FakeLauncher()
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler, launcher=launcher)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        app.call_later(app.open_monitor, fake.run)
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.view)
        await wait_for(pilot, lambda: app.screen.model.follower.state == "stale")
        await pilot.press("r")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        assert "from step 400" in str(app.screen.query_one("#question").render())
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await pilot.pause(0.1)
        assert launcher.started == []
        await pilot.press("r")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_for(pilot, lambda: launcher.started == [(fake.path, fake.run.checkpoint_path(400))])


@sync
async def test_r_on_the_runs_screen_asks_before_relaunching(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    fake.end("stopped", 400, "stopped")
    launcher = FakeLauncher()
    app = create_app(tmp_path / "datasets", tmp_path, launcher=launcher, gpu_sampler=FakeSampler)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#runs", DataTable).row_count == 1)
        await pilot.press("r")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        await pilot.pause(0.1)
        assert launcher.started == []
