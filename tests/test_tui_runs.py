"""Runs (home) screen, driven with Pilot: table, open, resume, delete with confirmation, quit."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from tui.app import create_app
from tui_helpers import FakeLauncher, FakeRun, FakeSampler, sync, typical_run, utc, wait_for  # noqa: F401


def cells(app, row: int) -> list[str]:
    table = app.screen.query_one("#runs", DataTable)
    return [str(c) for c in table.get_row_at(row)]


@sync
async def test_table_lists_runs_with_state_progress_and_losses(tmp_path: Path, utc: None) -> None:
    fake = typical_run(tmp_path)
    FakeRun(tmp_path, "old_20231101_080000", state="finished", hold_lock=False)
    app = create_app(tmp_path / "datasets", tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#runs", DataTable).row_count == 2)
        first = cells(app, 0)
        assert first[:4] == ["old_20231101_080000", "finished", "0/1000", "0"]
        second = cells(app, 1)
        assert second[:3] == ["demo_20231114_221320", "running", "400/1000"]
        assert second[4] == "0.422" and second[6] == "0.70" and second[7] == "11-14 22:13"
        fake.release()  # the trainer dies: the next refresh says it is not responding
        await app.screen.run_action("refresh")
        await wait_for(pilot, lambda: cells(app, 1)[1] == "not responding")


@sync
async def test_empty_runs_folder_says_how_to_start(tmp_path: Path) -> None:
    app = create_app(tmp_path / "datasets", tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        detail = app.screen.query_one("#run-detail")
        await wait_for(pilot, lambda: "Press n" in str(detail.render()))


@sync
async def test_delete_asks_and_removes_only_on_yes(tmp_path: Path) -> None:
    fake = FakeRun(tmp_path, "gone_20231101_080000", state="stopped", hold_lock=False)
    app = create_app(tmp_path / "datasets", tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#runs", DataTable).row_count == 1)
        await pilot.press("d")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("n")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        assert fake.path.is_dir()
        await pilot.press("d")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_for(pilot, lambda: not fake.path.exists())
        await wait_for(pilot, lambda: app.screen.query_one("#runs", DataTable).row_count == 0)


@sync
async def test_a_running_run_is_never_deleted(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    app = create_app(tmp_path / "datasets", tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#runs", DataTable).row_count == 1)
        await pilot.press("d")
        await pilot.pause(0.1)
        assert type(app.screen).__name__ == "RunsScreen"  # no question: refused outright
        assert fake.path.is_dir()
    fake.release()


@sync
async def test_resume_starts_from_the_newest_checkpoint_and_opens_monitor(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    fake.end("stopped", 400, "stopped")
    launcher = FakeLauncher()
    app = create_app(tmp_path / "datasets", tmp_path, launcher=launcher, gpu_sampler=FakeSampler)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#runs", DataTable).row_count == 1)
        await pilot.press("r")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
        assert launcher.started == [(fake.path, fake.run.checkpoint_path(400))]


@sync
async def test_resume_without_checkpoint_is_a_message(tmp_path: Path) -> None:
    FakeRun(tmp_path, "bare_20231101_080000", state="failed", hold_lock=False)
    launcher = FakeLauncher()
    app = create_app(tmp_path / "datasets", tmp_path, launcher=launcher)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#runs", DataTable).row_count == 1)
        await pilot.press("r")
        await wait_for(pilot, lambda: any("no checkpoint" in n.message for n in app._notifications))
        assert launcher.started == []


@sync
async def test_enter_opens_monitor_and_escape_comes_back(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    app = create_app(tmp_path / "datasets", tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#runs", DataTable).row_count == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        await pilot.press("n")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "DatasetsScreen")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        assert "ctrl+l" in str(app.screen.query_one("#help-text").render())
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_code is not None)
    fake.release()
