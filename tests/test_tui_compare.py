"""Several runs on one chart: marked on the Runs screen, told apart by marker, each with its verdict and
recommended checkpoint; the chart keys work there too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.app import create_app
from tui.screens.compare import RUN_MARKERS
from tui_helpers import FakeSampler, curve_run, sync, typical_run, wait_for


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VOXTOP_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


async def open_compare(pilot) -> object:
    app = pilot.app
    await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen"
                   and app.screen.query_one("#runs").row_count == 2)
    await pilot.press("c")  # one run is not a comparison
    await pilot.press("space", "down", "space")
    table = app.screen.query_one("#runs")
    assert [str(table.get_row_at(i)[0]) for i in range(2)] == ["✓ demo_20231114_221320", "✓ curve_20231114_221320"]
    await pilot.press("c")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "CompareScreen" and app.screen.view is not None
                   and not app.screen.view.reading)
    return app.screen


def legend(screen) -> str:
    return str(screen.query_one("#compare-legend").render())


@sync
async def test_marked_runs_overlay_with_their_markers_verdicts_and_recommended_checkpoints(tmp_path: Path) -> None:
    live = typical_run(tmp_path / "runs")
    curve_run(tmp_path / "runs", "u")
    app = create_app(tmp_path, tmp_path / "runs", gpu_sampler=FakeSampler, refresh_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_compare(pilot)
        chart = screen.query_one("#compare-chart")
        await wait_for(pilot, lambda: len(chart.lines) == 2)
        first, second = chart.lines
        assert (first.label, first.marker) == ("demo_20231114_221320", RUN_MARKERS[0])
        assert (second.label, second.marker) == ("curve_20231114_221320", RUN_MARKERS[1])
        assert first.steps[-1] == 400 and second.steps[-1] == 3000
        drawn = str(chart.render())
        assert "•" in drawn and "+" in drawn  # told apart without colour
        text = legend(screen)
        assert ("•• demo_20231114_221320 · running · step 400 · verdict: improving · recommended: "
                "step 400 (lowest val loss)") in text  # it holds the lock and says no heartbeat interval
        assert ("++ curve_20231114_221320 · finished · step 3000 · verdict: overtraining since step 1100 · "
                "recommended: step 1000") in text
        await pilot.press("left")
        await wait_for(pilot, lambda: "cursor step" in legend(screen))
        text = legend(screen)
        assert "at step 400: 0.4222 ~0." in text and "nearest checkpoint 400" in text
        assert "at step 3000: " in text and "nearest checkpoint 3000" in text
        await pilot.press("slash")
        picker = await wait_for(pilot, lambda: type(app.screen).__name__ == "MetricPicker" and app.screen)
        await pilot.press(*"val/loss$")
        await wait_for(pilot, lambda: picker.visible_names() == ["val/loss"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: str(chart.border_title).startswith("val/loss · ••"))
        await wait_for(pilot, lambda: len(chart.lines) == 2 and not chart.lines[0].connect)
        assert chart.lines[1].steps.tolist()[:3] == [100.0, 200.0, 300.0]
        await pilot.press("plus")
        await wait_for(pilot, lambda: chart.x_limits is not None and chart.x_limits[1] - chart.x_limits[0] < 2000)
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
    live.release()


@sync
async def test_another_trainers_run_compares_beside_a_voxtop_run(tmp_path: Path) -> None:
    import sys

    pytest.importorskip("torch", reason="the foreign run's checkpoints are written with torch.save")
    sys.path.insert(0, str(Path(__file__).parent / "foreign"))
    import make_runs

    live = typical_run(tmp_path / "runs")
    make_runs.write_dllogger(tmp_path / "runs")  # NVIDIA's Tacotron2 logs: nvlog.json, checkpoint_Tacotron2_N.pt
    app = create_app(tmp_path, tmp_path / "runs", gpu_sampler=FakeSampler, refresh_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen"
                       and app.screen.query_one("#runs").row_count == 2)
        await pilot.press("space", "down", "space", "c")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CompareScreen" and app.screen.view is not None
                       and not app.screen.view.reading)
        screen = app.screen
        chart = screen.query_one("#compare-chart")
        await wait_for(pilot, lambda: len([line for line in chart.lines if len(line.steps)]) == 2)
        assert {line.label for line in chart.lines} == {"demo_20231114_221320", "dllogger"}
        text = legend(screen)
        assert "dllogger · " in text and "recommended: step" in text.split("dllogger")[1]
    live.release()
