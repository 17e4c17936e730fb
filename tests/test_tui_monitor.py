"""Monitor screen against run directories written by the fake trainer: live updates and controls."""

from __future__ import annotations

from pathlib import Path

from tui.app import create_app
from tui.screens.monitor import MonitorScreen
from tui_helpers import FakeLauncher, FakeRun, FakeSampler, settle, sync, typical_run, wait_for


async def open_monitor(pilot, run) -> MonitorScreen:
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "RunsScreen")
    pilot.app.call_later(pilot.app.open_monitor, run)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MonitorScreen) and pilot.app.screen.view)
    return pilot.app.screen


def text(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


@sync
async def test_shows_progress_charts_picture_checkpoints_log_and_events(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        assert "demo_20231114_221320 · RUNNING · epoch 0 · verdict:" in text(screen, "#mon-title")
        assert "40% step 400/1000 · ETA 0:00:30 · 20.00 steps/s" in text(screen, "#mon-progress")
        assert screen.query_one("#loss").lines and screen.query_one("#attention").lines
        assert "alignment · step 400" in screen.query_one("#picture").border_title
        assert "█" in text(screen, "#picture")
        assert screen.query_one("#checkpoints").row_count == 2
        assert "lr_reduced" in text(screen, "#events")
        await wait_for(pilot, lambda: "GPU0  87%" in text(screen, "#gpu"))
        assert "step 400 loss" in "\n".join(screen.query_one("#log").lines)
    fake.release()


@sync
async def test_follows_new_records_and_checkpoints_live(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler, refresh_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        await wait_for(pilot, lambda: screen.view.loss.lines[0].steps.size and screen.query_one("#loss").size.width)
        await settle(pilot)
        drawn = screen.updates
        for _ in range(5):  # five polls (refresh_s = 0.1) with nothing new on disk: no redraw
            screen.refresh_view()
            await settle(pilot)
        assert screen.updates == drawn
        fake.train(range(410, 501, 10))
        fake.checkpoint(500, val_loss=0.7, tags=("best",))
        fake.log("step 500 loss 0.3")
        await wait_for(pilot, lambda: screen.query_one("#checkpoints").row_count == 3)
        await wait_for(pilot, lambda: "step 500/1000" in text(screen, "#mon-progress"))
        assert "alignment · step 500" in screen.query_one("#picture").border_title
        assert screen.updates > drawn
    fake.release()


@sync
async def test_keys_switch_picture_and_smoothing(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        await pilot.press("m")
        await wait_for(pilot, lambda: "predicted mel · step 400" in screen.query_one("#picture").border_title)
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: "ema 0.8" in str(screen.query_one("#loss").border_title))
        await pilot.press("left_square_bracket", "left_square_bracket")
        await wait_for(pilot, lambda: "ema 0.3" in str(screen.query_one("#loss").border_title))
    fake.release()


@sync
async def test_stop_and_kill_ask_first(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    launcher = FakeLauncher()
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler, launcher=launcher)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_monitor(pilot, fake.run)
        await pilot.press("s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        assert "saves a checkpoint" in str(app.screen.query_one("#question").render())
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        assert launcher.stopped == []
        await pilot.press("s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_for(pilot, lambda: launcher.stopped == [(fake.path, False)])
        await pilot.press("k")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_for(pilot, lambda: launcher.stopped[-1] == (fake.path, True))
        await pilot.press("r")  # still running: resume is refused
        await pilot.pause(0.05)
        assert launcher.started == []
    fake.release()


@sync
async def test_resume_uses_the_selected_checkpoint(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    fake.end("stopped", 400, "stopped")
    launcher = FakeLauncher()
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler, launcher=launcher)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        assert "STOPPED" in text(screen, "#mon-title") and "end: stopped" in text(screen, "#events")
        table = screen.query_one("#checkpoints")
        table.focus()
        await pilot.press("down")  # newest first: down selects step 200
        await pilot.press("r")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_for(pilot, lambda: launcher.started == [(fake.path, fake.run.checkpoint_path(200))])


@sync
async def test_failed_run_shows_the_error_and_traceback(tmp_path: Path) -> None:
    fake = FakeRun(tmp_path, "broken_20231114_221320")
    fake.start()
    fake.log("Traceback (most recent call last):\n  File \"loop.py\", line 1\nRuntimeError: CUDA out of memory")
    fake.end("failed", 0, "failed", error="RuntimeError: CUDA out of memory")
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        title = text(screen, "#mon-title")
        assert "FAILED" in title and "error: RuntimeError: CUDA out of memory" in title
        assert screen.query_one("#log").lines[-1] == "RuntimeError: CUDA out of memory"
        assert "none yet" in screen.query_one("#picture").border_title


@sync
async def test_overtraining_run_shows_verdict_minimum_marker_and_tags(tmp_path: Path) -> None:
    from tui_helpers import curve_run

    fake = curve_run(tmp_path, "u")
    launcher = FakeLauncher()
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler, launcher=launcher)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        onset = screen.view.analysis["onset_step"]
        assert 1000 <= onset <= 1200  # the smoothed minimum lags the raw one by the EMA's delay
        assert f"verdict: overtraining since step {onset}" in text(screen, "#mon-title")
        chart = screen.query_one("#loss")
        minimum = next(line for line in chart.lines if line.label == "minimum")
        assert minimum.steps.tolist() == [1000.0] and minimum.marker == "▼"  # at the raw minimum
        assert chart.vlines == [onset] and "▼ val minimum" in str(chart.border_title)
        table = screen.query_one("#checkpoints")
        assert str(table.get_cell("1000", "tags")) == "recommended,minimum"
        assert table.selected_step() == 1000  # the recommendation is selected for resume
        await pilot.press("r")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_for(pilot, lambda: launcher.started == [(fake.path, fake.run.checkpoint_path(1000))])


@sync
async def test_plateau_run_is_no_overtraining(tmp_path: Path) -> None:
    from tui_helpers import curve_run

    fake = curve_run(tmp_path, "plateau")
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        title = text(screen, "#mon-title")
        assert "verdict: plateau" in title or "verdict: improving" in title
        assert "overtraining" not in title
        assert screen.query_one("#loss").vlines == []
