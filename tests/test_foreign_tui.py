"""Other trainers' runs in the TUI: the Runs screen lists an RVC folder beside voxtop's runs, enter opens its
Monitor with its curves, checkpoints (the recommended one tagged) and mel picture; resume is refused."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable

from tui.app import create_app
from tui_helpers import FakeSampler, sync, wait_for

sys.path.insert(0, str(Path(__file__).parent / "foreign"))
import make_runs  # noqa: E402

pytest.importorskip("torch", reason="the fixtures are written with torch's SummaryWriter")


@pytest.fixture(scope="module")
def rvc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_runs.write_rvc(tmp_path_factory.mktemp("rvc"))


def screen_text(app) -> str:  # noqa: ANN001
    return "\n".join(str(widget.render()) for widget in app.screen.query("Static"))


@sync
async def test_an_rvc_run_in_the_runs_screen_and_monitor(rvc: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    shutil.copytree(rvc, runs / "myvoice")
    for path in (runs / "myvoice").rglob("events.out.*"):  # written two minutes ago: not running any more
        os.utime(path, (time.time() - 120, time.time() - 120))
    app = create_app(tmp_path / "datasets", runs, gpu_sampler=FakeSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await wait_for(pilot, lambda: app.screen.query_one("#runs", DataTable))
        await wait_for(pilot, lambda: table.row_count == 1)
        row = [str(c) for c in table.get_row_at(0)]
        assert row[0] == "myvoice" and row[2] == str(make_runs.LAST_STEP)
        await pilot.press("r")
        await wait_for(pilot, lambda: any("not trained by voxtop" in str(n.message)
                                          for n in app._notifications))
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
        try:
            checkpoints = await wait_for(pilot, lambda: next(
                (t for t in app.screen.query(DataTable) if t.row_count == 10), None), timeout_s=20)
        except AssertionError:
            raise AssertionError(screen_text(app) + str([t.row_count for t in app.screen.query(DataTable)])) from None
        cells = [[str(c) for c in checkpoints.get_row_at(k)] for k in range(checkpoints.row_count)]
        recommended = next(row for row in cells if "3600" in row[0])
        assert any("recommended" in cell for cell in recommended)
        assert "overtraining since step" in screen_text(app)  # the verdict on loss/g/total
        picture = app.screen.query_one("#picture")
        await wait_for(pilot, lambda: picture.matrix is not None, timeout_s=20)
        assert picture.matrix.shape == (40, 64)  # RVC's slice/mel_gen of step 6000, decoded from the event file


@sync
async def test_two_foreign_runs_compared(rvc: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    shutil.copytree(rvc, runs / "voice_a")
    shutil.copytree(rvc, runs / "voice_b")
    app = create_app(tmp_path / "datasets", runs, gpu_sampler=FakeSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await wait_for(pilot, lambda: app.screen.query_one("#runs", DataTable))
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("space", "down", "space", "c")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CompareScreen")
        await wait_for(pilot, lambda: "voice_a" in screen_text(app) and "voice_b" in screen_text(app), timeout_s=20)
        await pilot.pause(1.0)
        assert not [n for n in app._notifications if n.severity == "error"]
