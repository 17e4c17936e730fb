"""Keys a new user reaches for: q quits from the Monitor, g is the GPU view everywhere, p is in the
Runs footer, enter works wherever the focus is on Datasets, and switches read as [x] on / [ ] off."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import DEMO
from tui.app import create_app
from tui.screens.monitor import MonitorScreen
from tui_helpers import FakeLauncher, FakeSampler, sync, typical_run, form_open, wait_for


def _footer(app) -> list[str]:
    """The descriptions the footer shows for the current screen."""
    return [active.binding.description for active in app.screen.active_bindings.values() if active.binding.show]


@sync
async def test_q_in_the_monitor_quits_voxtop_and_leaves_the_run_alone(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    launcher = FakeLauncher()
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler, launcher=launcher)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        app.call_later(app.open_monitor, fake.run)
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.view)
        assert "Quit" in _footer(app)
        await pilot.press("q")
        await pilot.pause(0.2)
        assert app._exit_renderables is not None and not app.is_running
    assert launcher.stopped == [] and fake.run.is_locked()
    fake.release()


@sync
async def test_runs_screen_g_opens_the_gpu_view_and_the_footer_offers_resume_from(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    fake.end("stopped", 400, "stopped")
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler, launcher=FakeLauncher())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("#runs") and app.screen.query_one("#runs").row_count == 1)
        assert "Resume from" in _footer(app)
        await pilot.press("g")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "GpuScreen")


@sync
async def test_enter_on_datasets_opens_the_form_after_shift_tab_moved_the_focus(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    shutil.copytree(DEMO, root / "demo", ignore=shutil.ignore_patterns(".voxtop"))
    app = create_app(root, tmp_path / "runs", gpu_sampler=FakeSampler, launcher=FakeLauncher())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        await pilot.press("n")
        await wait_for(pilot, lambda: "clips        150" in str(app.screen.query_one("#dataset-detail").render()))
        await pilot.press("shift+tab")
        await pilot.pause(0.05)
        assert app.focused is not None and app.focused.id != "datasets"
        await pilot.press("enter")
        await wait_for(pilot, lambda: form_open(app))


@sync
async def test_switches_say_on_or_off_in_words(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    shutil.copytree(DEMO, root / "demo", ignore=shutil.ignore_patterns(".voxtop"))
    app = create_app(root, tmp_path / "runs", gpu_sampler=FakeSampler, launcher=FakeLauncher())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        app.call_later(app.open_params, dataset=root / "demo")
        await wait_for(pilot, lambda: form_open(app))
        app.screen.query_one("#advanced").collapsed = False
        await wait_for(pilot, lambda: app.screen.query("#f-data-resample"))
        switch = app.screen.query_one("#f-data-resample")
        assert str(switch.render()).startswith("[ ] off")
        switch.focus()
        await pilot.press("space")
        await wait_for(pilot, lambda: str(switch.render()).startswith("[x] on"))
        assert app.screen.raw_values()["data.resample"] is True
