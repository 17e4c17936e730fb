"""TensorBoard habits in the Monitor: any metric, zoom and pan, follow latest, a cursor readout, log y,
time axes, and downsampling that never hides a spike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from test_tui_monitor import open_monitor
from tui.app import create_app
from tui.screens.metric_picker import metric_filter
from tui.series import column_extremes
from tui.widgets.chart_canvas import Axis, Stroke, draw
from tui.widgets.chart_model import ChartWindow, axis_ticks, duration_label
from tui.widgets.chart_state import load_choice
from tui_helpers import FakeRun, FakeSampler, settle, sync, typical_run, wait_for


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The TUI's own state (remembered chart choices) in a folder of this test."""
    folder = tmp_path / "state"
    monkeypatch.setenv("VOXTOP_STATE_DIR", str(folder))
    return folder


# --- downsampling, window, canvas ---------------------------------------------------------


def test_each_column_keeps_the_min_and_max_of_its_raw_points_so_a_spike_survives() -> None:
    steps = np.arange(1_000_000, dtype=np.float64)
    values = np.full(len(steps), 1.0)
    values[777_777] = 50.0  # one bad batch
    values[123_456] = -3.0
    x, y = column_extremes(steps, values, 0, 999_999, 80)
    assert len(x) <= 160 and y.max() == 50.0 and y.min() == -3.0
    # zoomed into a window: only the points in view (and one on each side) count
    x, y = column_extremes(steps, values, 200_000, 300_000, 80)
    assert y.max() == 1.0 and x.min() >= 199_999 and x.max() <= 300_001


def test_the_window_follows_the_newest_step_until_a_pan_and_returns_with_one_key() -> None:
    extent = (0.0, 1000.0)
    window = ChartWindow().zoomed(0.5, extent)
    assert window.follow and window.visible(extent) == (500.0, 1000.0)
    assert window.visible((0.0, 2000.0)) == (1500.0, 2000.0)  # the run grew: the view moved with it
    panned = window.panned(-0.25, extent)
    assert not panned.follow and panned.visible(extent) == (375.0, 875.0)
    assert panned.visible((0.0, 2000.0)) == (375.0, 875.0)  # stays put while the run grows
    assert panned.following().visible((0.0, 2000.0)) == (1500.0, 2000.0)
    assert panned.at_start(extent).visible(extent) == (0.0, 500.0)
    assert panned.zoomed(4.0, extent).visible(extent) == extent  # zoomed out to the whole run: following again
    assert panned.zoomed(4.0, extent).follow


def test_zoom_keeps_the_cursor_where_it_is_and_the_cursor_pans_the_view_at_its_edge() -> None:
    extent = (0.0, 1000.0)
    window = ChartWindow(follow=False, width=1000.0, span=(0.0, 1000.0), cursor=200.0)
    zoomed = window.zoomed(0.5, extent)
    low, high = zoomed.visible(extent)
    assert (200.0 - low) / (high - low) == pytest.approx(0.2) and high - low == 500.0
    window = ChartWindow(follow=False, width=100.0, span=(100.0, 200.0), cursor=101.0)
    moved = window.cursor_moved(-10, extent, plot_columns=50)  # 10 columns of 2 steps each: left of the view
    assert moved.cursor == pytest.approx(81.0) and moved.visible(extent)[0] == pytest.approx(81.0)


def test_the_canvas_draws_markers_braille_a_cursor_and_labels() -> None:
    line = Stroke(np.array([0.0, 10.0]), np.array([0.0, 1.0]))
    points = Stroke(np.array([5.0]), np.array([0.5]), marker="•", connect=False)
    picture = draw([line, points], Axis(0, 10, [0, 5, 10], ["0", "5", "10"]), Axis(0, 1, [0, 1], ["0", "1"]),
                   30, 8, cursor=2.0)
    rows = picture.rows
    assert len(rows) == 8 and rows[-1].split() == ["0", "5", "10"]
    assert "".join(rows).count("•") == 1 and "┆" in "".join(rows)
    assert any(0x2800 < ord(ch) <= 0x28FF for ch in "".join(rows))  # the line, in braille
    assert rows[0].startswith("1┤") and rows[-2].startswith("0┤")


def test_time_axes_label_durations_and_clock_times() -> None:
    assert duration_label(90) == "1m30s" and duration_label(7200) == "2h" and duration_label(93600) == "1d2h"
    ticks, labels = axis_ticks("relative", 0, 3600, 5)
    assert labels[:3] == ["0s", "15m", "30m"]
    ticks, labels = axis_ticks("wall", 1_700_000_000, 1_700_003_600, 4)
    assert all(len(label) == 5 and label[2] == ":" for label in labels)


def test_the_filter_is_a_regex_or_plain_text() -> None:
    assert metric_filter("loss_(mel|gate)").search("train/loss_gate")
    assert metric_filter("grad_norm(").search("train/grad_norm(") is not None  # not a regex: literal


# --- the Monitor, driven by keys -------------------------------------------------------------


def diagonal_run(runs_root: Path) -> FakeRun:
    """A run whose records also log attention_diagonality (train and val), as the trainer does."""
    fake = typical_run(runs_root)
    for step in (410, 420):
        fake.t += 0.5
        fake.record("train", step, epoch=0, loss=0.41, loss_mel=0.33, loss_gate=0.05, loss_guided=0.01,
                    attention_score=0.7, attention_diagonality=0.6 + step / 10_000, grad_norm=2.5, lr=5e-4,
                    batch_size=8, frames_per_s=1000.0)
    fake.record("val", 420, epoch=0, loss=0.5, loss_mel=0.4, loss_gate=0.05, attention_score=0.6,
                attention_diagonality=0.65)
    fake.status(step=420)
    return fake


def readout(screen) -> str:
    return str(screen.query_one("#mon-cursor").render())


@sync
async def test_cursor_reads_raw_and_smoothed_values_and_the_nearest_checkpoint(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        await wait_for(pilot, lambda: screen.query_one("#loss").lines)
        assert not screen.query_one("#mon-cursor").display  # no cursor, no readout line
        await pilot.press("left")  # the checkpoint table has the focus: left/right still move the cursor
        await wait_for(pilot, lambda: "nearest checkpoint" in readout(screen))
        text = readout(screen)
        assert text.startswith("step 400 · loss: train ⠤⠤ 0.4222 ~0.") and "; val •• 0.5609 @400 · attention_score: train" in text
        assert "nearest checkpoint: step 400 (recommended)" in text
        assert screen.query_one("#loss").cursor == 400.0
        for _ in range(30):
            await pilot.press("left")
        await wait_for(pilot, lambda: "nearest checkpoint: step 200" in readout(screen))
        cursor = screen.query_one("#loss").cursor
        assert cursor is not None and 150 < cursor < 300
        await pilot.press("c")  # cursor off: the readout goes
        await wait_for(pilot, lambda: not screen.query_one("#mon-cursor").display)
    fake.release()


@sync
async def test_zoom_pan_home_end_and_follow_by_key(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        chart = screen.query_one("#loss")
        await wait_for(pilot, lambda: chart.lines)
        assert chart.x_limits == (10.0, 400.0)
        await pilot.press("plus")  # following: zoom in keeps the newest step at the right edge
        await wait_for(pilot, lambda: chart.x_limits == (205.0, 400.0))
        await pilot.press("comma")  # pan left: leaves follow mode
        await wait_for(pilot, lambda: chart.x_limits[1] < 400.0)
        assert not screen.chart_window.follow and "f: follow" in chart.border_title
        await pilot.press("home")
        await wait_for(pilot, lambda: chart.x_limits == (10.0, 205.0))
        fake.train(range(410, 601, 10))  # the run goes on: a panned view stays where it is
        await settle(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: chart.x_limits == (405.0, 600.0))  # follow latest, same width
        await pilot.press("minus", "minus")
        await wait_for(pilot, lambda: chart.x_limits == (10.0, 600.0))
        drawn = [line for line in chart.lines if line.label == "train"][0]
        assert drawn.steps[-1] == 600.0
    fake.release()


@sync
async def test_log_scale_outliers_and_time_axes(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    fake.train(range(410, 421, 10), loss=lambda s: 40.0)  # a spike far above the rest
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        chart = screen.query_one("#loss")
        await wait_for(pilot, lambda: chart.lines)
        await pilot.press("left_square_bracket", "left_square_bracket", "left_square_bracket")  # smoothing 0
        await wait_for(pilot, lambda: "ema 0 " in chart.border_title)
        assert chart.y_limits[1] < 5  # the spike is left out of the y range...
        train = next(line for line in chart.lines if line.label == "train")
        assert train.values.max() == 40.0  # ...but drawn: it runs off the top
        await pilot.press("o")
        await wait_for(pilot, lambda: chart.y_limits[1] >= 40.0)
        await pilot.press("l")
        await wait_for(pilot, lambda: "log y" in chart.border_title)
        assert chart.y_ticks is not None and "10" in chart.y_ticks[1]
        train = next(line for line in chart.lines if line.label == "train")
        assert train.values.max() == pytest.approx(np.log10(40.0))
        await pilot.press("x")  # relative time: typical_run logs a train record every 0.5 s
        await wait_for(pilot, lambda: "x: relative time" in chart.border_title)
        await wait_for(pilot, lambda: chart.x_limits is not None and chart.x_limits[1] < 100)
        assert any(label.endswith("s") for label in chart.x_ticks[1])
        await pilot.press("x")
        await wait_for(pilot, lambda: "x: wall time" in chart.border_title)
        assert all(":" in label for label in chart.x_ticks[1])
    fake.release()


@sync
async def test_any_metric_through_the_picker_and_remembered_per_run(tmp_path: Path, state_dir: Path) -> None:
    fake = diagonal_run(tmp_path)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        await wait_for(pilot, lambda: screen.query_one("#attention").lines)
        screen.query_one("#attention").focus()
        await pilot.press("slash")
        picker = await wait_for(pilot, lambda: type(app.screen).__name__ == "MetricPicker" and app.screen)
        names = picker.visible_names()
        for metric in ("train/attention_diagonality", "val/attention_diagonality", "train/lr", "train/grad_norm",
                       "train/loss_mel", "train/loss_gate", "train/loss_guided", "train/frames_per_s"):
            assert metric in names
        assert "train/t" not in names and "train/step" not in names
        await pilot.press(*"attention")
        await wait_for(pilot, lambda: picker.visible_names() == [
            "train/attention_diagonality", "train/attention_score", "val/attention_diagonality", "val/attention_score"])
        # the chart's metrics start ticked: tick diagonality, untick the score
        await pilot.press("down", "space", "down", "space", "down", "space", "down", "space", "enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
        chart = screen.query_one("#attention")
        await wait_for(pilot, lambda: "attention_diagonality ·" in str(chart.border_title))
        await wait_for(pilot, lambda: any(line.label == "train" and len(line.steps) for line in chart.lines))
        train = next(line for line in chart.lines if line.label == "train")
        assert train.steps.tolist() == [410.0, 420.0]  # only the records that log it
        await wait_for(pilot, lambda: load_choice(fake.path).get("charts") is not None)
    assert load_choice(fake.path)["charts"] == [["train/loss", "val/loss"],
                                                ["train/attention_diagonality", "val/attention_diagonality"]]
    assert not any("charts" in p.name for p in fake.path.rglob("*"))  # nothing written into the run
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(120, 40)) as pilot:  # opened again: the chosen metrics come back
        screen = await open_monitor(pilot, fake.run)
        chart = screen.query_one("#attention")
        await wait_for(pilot, lambda: "attention_diagonality" in str(chart.border_title))
    fake.release()


@sync
async def test_two_metrics_of_different_fields_on_one_chart_are_named_and_told_apart(tmp_path: Path) -> None:
    fake = diagonal_run(tmp_path)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        await wait_for(pilot, lambda: screen.query_one("#loss").lines)
        await pilot.press("slash")
        picker = await wait_for(pilot, lambda: type(app.screen).__name__ == "MetricPicker" and app.screen)
        await pilot.press(*"loss$")  # the chart's own metrics, unticked: then the two
        await pilot.press("down", "space", "down", "space")
        for _ in range(5):
            await pilot.press("backspace")
        await pilot.press(*"train/(lr|grad)")
        await wait_for(pilot, lambda: picker.visible_names() == ["train/grad_norm", "train/lr"])
        await pilot.press("down", "space", "down", "space", "enter")
        chart = screen.query_one("#loss")
        await wait_for(pilot, lambda: str(chart.border_title).startswith("train/grad_norm ⠤⠤, train/lr ++"))
        lines = {line.label: line for line in chart.lines}
        assert lines["train/grad_norm"].marker == "braille" and lines["train/lr"].marker == "+"
        drawn = str(chart.render())
        assert "+" in drawn
    fake.release()


@sync
async def test_a_click_puts_the_cursor_there_and_the_wheel_zooms_around_the_pointer(tmp_path: Path) -> None:
    from types import SimpleNamespace

    fake = typical_run(tmp_path)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        chart = screen.query_one("#loss")
        await wait_for(pilot, lambda: chart.lines and chart.picture().plot_width)
        picture = chart.picture()
        column = picture.plot_left + picture.plot_width // 2  # the middle of the plot: about step 205
        await pilot.click("#loss", offset=(column, 2))
        await wait_for(pilot, lambda: chart.cursor is not None)
        assert 190 < chart.cursor < 220 and "nearest checkpoint: step 200" in readout(screen)
        chart.on_mouse_scroll_up(SimpleNamespace(x=column, stop=lambda: None))  # what the terminal sends
        await wait_for(pilot, lambda: chart.x_limits is not None and chart.x_limits[1] - chart.x_limits[0] < 390)
        low, high = chart.x_limits
        assert low < chart.cursor < high and low > 10 and high < 400  # zoomed around the pointer
        chart.on_mouse_scroll_down(SimpleNamespace(x=column, stop=lambda: None))
        chart.on_mouse_scroll_down(SimpleNamespace(x=column, stop=lambda: None))
        await wait_for(pilot, lambda: chart.x_limits == (10.0, 400.0))
    fake.release()


@sync
async def test_the_picker_cancels_and_restores_the_default(tmp_path: Path) -> None:
    fake = diagonal_run(tmp_path)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        chart = screen.query_one("#loss")
        await wait_for(pilot, lambda: chart.lines)
        await pilot.press("slash")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MetricPicker")
        await pilot.press(*"lr", "down", "space", "escape")  # cancelled: nothing changes
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
        assert screen.chart_metrics == (("train/loss", "val/loss"), ("train/attention_score", "val/attention_score"))
        await pilot.press("slash")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MetricPicker")
        await pilot.press(*"^train/loss$", "down", "space", "enter")  # train/loss unticked: val/loss alone
        await wait_for(pilot, lambda: [line.label for line in chart.lines if line.connect is False][:1] == ["val"]
                       and not any(line.label == "train" for line in chart.lines))
        await pilot.press("slash")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MetricPicker")
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: any(line.label == "train" for line in chart.lines))
    fake.release()
