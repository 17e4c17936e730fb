"""Charts without false shapes: two val losses are two dots, not a staircase; a busy CPU sampled every
5 s draws a solid bar, not a comb of empty columns."""

from __future__ import annotations

from pathlib import Path

from tui.app import create_app
from tui.gpu import GpuFeed, HostReading, Reading
from tui_helpers import FakeRun, FakeSampler, sync, wait_for
from test_tui_monitor import open_monitor


@sync
async def test_two_val_points_are_two_dots(tmp_path: Path) -> None:
    fake = FakeRun(tmp_path)
    fake.start()
    fake.train(range(10, 401, 10))
    fake.val(100, 1.6)
    fake.val(400, 0.6)  # far apart in steps and in loss: joined, they drew a staircase of dots
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        chart = screen.query_one("#loss")
        await wait_for(pilot, lambda: chart.lines and chart.size.width)
        drawn = str(chart.render())
    val = next(line for line in chart.lines if line.label == "val")
    assert list(val.steps) == [100.0, 400.0] and not val.connect
    assert drawn.count("•") == 2, drawn
    fake.release()


class NoGpu:
    """A machine without the NVIDIA driver, its CPU busy."""

    def sample(self) -> Reading:
        return Reading(host=HostReading(100.0, 8192.0, 16384.0, (100.0, 100.0)),
                       reason="no driver: libnvidia-ml.so not found")


@sync
async def test_cpu_history_sampled_every_5_s_draws_without_empty_columns(tmp_path: Path) -> None:
    now = [10_000.0]
    app = create_app(tmp_path, tmp_path, gpu_sampler=NoGpu, gpu_refresh_s=3600)
    app._gpu_feed = GpuFeed(NoGpu, clock=lambda: now[0])
    for _ in range(61):  # five minutes as the Monitor samples a GPU-less host: every 5 s
        app.gpu_feed.sample()
        now[0] += 5.0
    now[0] -= 5.0
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        await pilot.press("G")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "GpuScreen" and app.screen.snapshot)
        lines = app.screen.query_one("#gpu-cards").lines()
    top = next(line for line in lines if line.startswith("100┤"))
    cpu = top.split("100┤")[1].strip()  # the left chart (cpu %); ram % is the right one
    assert len(cpu) > 30 and set(cpu) == {"█"}, top  # a busy CPU: one solid bar, no empty column
