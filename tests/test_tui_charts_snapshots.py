"""Snapshots of the charts' new views at 80x24 and 160x48: the Monitor with its cursor readout after zoom,
the compare view of two marked runs with the cursor.

Update after an intended change with `pytest tests/test_tui_charts_snapshots.py --snapshot-update`
and look at the pictures before committing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from test_tui_snapshots import SIZES, runs_loaded, workspace  # noqa: F401
from tui.app import create_app
from tui_helpers import FakeSampler, curve_run, utc, wait_for  # noqa: F401


def app():
    """The snapshot app, sampling the (fake) GPU once: the panel's history does not grow while keys are pressed."""
    return create_app(Path("datasets"), Path("runs"), gpu_sampler=FakeSampler, refresh_s=0.2, gpu_refresh_s=3600)


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXTOP_STATE_DIR", str(tmp_path / "state"))


@pytest.mark.parametrize("size", SIZES)
def test_monitor_cursor_readout(snap_compare, workspace: Path, size: tuple[int, int]) -> None:  # noqa: F811
    async def cursor(pilot) -> None:
        await runs_loaded(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "MonitorScreen"
                       and pilot.app.screen.view is not None
                       and "GPU0" in str(pilot.app.screen.query_one("#gpu").render()))
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#loss").lines)
        await pilot.press("plus", "left", "left", "left")
        await wait_for(pilot, lambda: "nearest checkpoint" in str(pilot.app.screen.query_one("#mon-cursor").render())
                       and pilot.app.screen.query_one("#loss").cursor is not None
                       and pilot.app.screen.query_one("#loss").cursor < 400)

    assert snap_compare(app(), terminal_size=size, run_before=cursor)


@pytest.mark.parametrize("size", SIZES)
def test_compare_view(snap_compare, workspace: Path, size: tuple[int, int]) -> None:  # noqa: F811
    curve_run(workspace / "runs", "u", name="curve_20231112_090000")  # overtrains: a verdict and a minimum

    async def compare(pilot) -> None:
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "RunsScreen"
                       and pilot.app.screen.query_one("#runs").row_count == 3)
        await pilot.press("space", "down", "space", "down", "space", "c")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "CompareScreen"
                       and pilot.app.screen.view is not None and not pilot.app.screen.view.reading
                       and len(pilot.app.screen.query_one("#compare-chart").lines) == 3)
        await pilot.press("left", "left")
        await wait_for(pilot, lambda: "cursor step" in str(pilot.app.screen.query_one("#compare-legend").render()))

    assert snap_compare(app(), terminal_size=size, run_before=compare)
