"""Snapshots of every screen at 80x24 and 160x48, with fixed times, paths and GPU figures.

Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the report before committing.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from conftest import DEMO
from tui.app import create_app
from tui_helpers import FakeRun, FakeSampler, typical_run, utc, form_open, wait_for  # noqa: F401

SIZES = [(80, 24), (160, 48)]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, utc: None) -> Iterator[Path]:
    """datasets/demo and runs/ with a running and a finished run, in a fixed-name working folder."""
    shutil.copytree(DEMO, tmp_path / "datasets" / "demo", ignore=shutil.ignore_patterns(".voxtop"))
    monkeypatch.chdir(tmp_path)
    running = typical_run(tmp_path / "runs")
    finished = FakeRun(tmp_path / "runs", "demo_20231110_090000", state="finished", hold_lock=False,
                       total_steps=500, t0=1_699_606_800.0)
    finished.train(range(10, 501, 10))
    finished.val(500, 0.61, 0.52)
    yield tmp_path
    running.release()


def app():
    return create_app(Path("datasets"), Path("runs"), gpu_sampler=FakeSampler, refresh_s=0.2)


async def runs_loaded(pilot) -> None:
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "RunsScreen"
                   and pilot.app.screen.query_one("#runs").row_count == 2)


@pytest.mark.parametrize("size", SIZES)
def test_runs_screen(snap_compare, workspace: Path, size: tuple[int, int]) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=runs_loaded)


@pytest.mark.parametrize("size", SIZES)
def test_datasets_screen(snap_compare, workspace: Path, size: tuple[int, int]) -> None:
    async def scanned(pilot) -> None:
        await runs_loaded(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: "clips" in str(pilot.app.screen.query_one("#dataset-detail").render()))

    assert snap_compare(app(), terminal_size=size, run_before=scanned)


@pytest.mark.parametrize("size", SIZES)
def test_params_screen(snap_compare, workspace: Path, size: tuple[int, int]) -> None:
    async def form(pilot) -> None:
        await runs_loaded(pilot)
        pilot.app.call_later(pilot.app.open_params, dataset=Path("datasets/demo"))
        await wait_for(pilot, lambda: form_open(pilot.app)
                       and "steps/epoch" in str(pilot.app.screen.query_one("#estimates").render()))

    assert snap_compare(app(), terminal_size=size, run_before=form)


@pytest.mark.parametrize("size", SIZES)
def test_monitor_screen(snap_compare, workspace: Path, size: tuple[int, int]) -> None:
    async def monitor(pilot) -> None:
        await runs_loaded(pilot)
        await pilot.press("enter")  # the running run: newest name first
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "MonitorScreen"
                       and pilot.app.screen.view is not None
                       and "GPU0" in str(pilot.app.screen.query_one("#gpu").render()))
        await wait_for(pilot, lambda: pilot.app.screen.view.loss.lines[0].steps.size > 0
                       and pilot.app.screen.query_one("#loss").size.width > 0)

    assert snap_compare(app(), terminal_size=size, run_before=monitor)


def test_help_screen(snap_compare, workspace: Path) -> None:
    async def help_open(pilot) -> None:
        await runs_loaded(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "HelpScreen")

    assert snap_compare(app(), terminal_size=(80, 24), run_before=help_open)


@pytest.mark.parametrize("size", SIZES)
def test_gpu_screen(snap_compare, workspace: Path, size: tuple[int, int]) -> None:
    """The GPU view from the Monitor: a recorded H100 sample, the run's trainer marked."""
    import json

    from test_gpu import TRAINER_PID, recorded_sampler

    status_path = workspace / "runs" / "demo_20231114_221320" / "status.json"
    status_path.write_text(json.dumps({**json.loads(status_path.read_text()), "pid": TRAINER_PID, "pgid": None}))

    async def gpu_view(pilot) -> None:
        await runs_loaded(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "MonitorScreen")
        await pilot.press("g")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "GpuScreen"
                       and pilot.app.screen.query_one("#gpu-procs").row_count == 2)

    gpu_app = create_app(Path("datasets"), Path("runs"), gpu_sampler=recorded_sampler, refresh_s=0.2,
                         gpu_refresh_s=3600)
    assert snap_compare(gpu_app, terminal_size=size, run_before=gpu_view)


@pytest.mark.parametrize("size", SIZES)
def test_monitor_screen_with_health(snap_compare, workspace: Path, size: tuple[int, int]) -> None:
    """Checkpoints read through: the health line, ▲/◆ on the attention chart, reads/heard in the table."""
    import json

    from health_helpers import health_record

    metrics = workspace / "runs" / "demo_20231114_221320" / "metrics.jsonl"
    with open(metrics, "a", encoding="utf-8") as handle:
        for step, read_through, understood in ((200, 11, 3), (400, 2, 1)):
            record = {"t": 1_700_000_300.0, "kind": "health", "step": step,
                      **health_record(step, read_through, understood, heard={1: "glue the [b]sheet"})}
            handle.write(json.dumps(record) + "\n")

    async def monitor(pilot) -> None:
        await runs_loaded(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "MonitorScreen"
                       and pilot.app.screen.view is not None
                       and "GPU0" in str(pilot.app.screen.query_one("#gpu").render())
                       and pilot.app.screen.query_one("#mon-health").display)
        await wait_for(pilot, lambda: pilot.app.screen.view.loss.lines[0].steps.size > 0
                       and pilot.app.screen.query_one("#loss").size.width > 0)

    assert snap_compare(app(), terminal_size=size, run_before=monitor)
