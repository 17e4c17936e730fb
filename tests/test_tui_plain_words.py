"""At 80x24 the Monitor cuts nothing that matters, and the screens speak plain words."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Label

from tui.app import create_app
from tui.screens.form import FieldRow
from tui_helpers import FakeSampler, settle, sync, typical_run, wait_for
from test_tui_monitor import open_monitor, text
from test_tui_params import open_form, setup

PROGRESS_LINE = ("epoch 12/400 step 1210/2000 loss 0.4321 (mel 0.4012 gate 0.0210 guided 0.0099) "
                 "attention 0.412 diagonal 0.88 4.21 s/it ETA 0:55:25")


@sync
async def test_form_labels_say_each_unit_once(tmp_path: Path) -> None:
    app, root = setup(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_form(pilot, root / "demo")
        await pilot.click("#advanced CollapsibleTitle")  # the advanced fields, as the user opens them
        await wait_for(pilot, lambda: len(app.screen.query(FieldRow)) > 40)
        await pilot.pause(0.5)  # let the mounted editors finish composing
        await settle(pilot)
        labels = {row.info.key: str(row.query_one(Label).render()) for row in app.screen.query(FieldRow)}
    assert labels["train.max_steps"] == "Max steps"
    assert labels["checkpoint.every_minutes"] == "Checkpoint every (minutes)"
    assert labels["checkpoint.every_steps"] == "Checkpoint every (steps)"
    assert labels["data.sample_rate"] == "Sample rate (Hz)"
    assert not [label for label in labels.values() if "(time)" in label or label.count("(") > 1]


@sync
async def test_monitor_at_80x24_shows_whole_log_lines_newest_events_and_the_checkpoint_columns(
        tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    fake.start(step=400, world_size=2)
    fake.log(PROGRESS_LINE)
    for number in range(8):
        fake.event("lr_reduced", f"learning rate lowered, time {number}", level="info", step=400)
    fake.event("overtraining", "val loss rising since step 380 while train loss fell", step=400)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        await wait_for(pilot, lambda: "overtraining" in text(screen, "#events"))
        title = text(screen, "#mon-title")
        assert "world" not in title and "· 2 processes ·" in title
        log = screen.query_one("#log")
        assert log.size.width < len(PROGRESS_LINE)  # the line is longer than the panel...
        assert PROGRESS_LINE in " ".join(text(screen, "#log").split())  # ...and reads whole, wrapped
        events = " ".join(text(screen, "#events").split())
        assert "val loss rising since step 380 while train loss fell" in events  # the newest, whole
        table = screen.query_one("#checkpoints")
        assert table.shown_columns[:5] == ["step", "val loss", "reads", "heard", "tags"]
        assert table.virtual_size.width <= table.size.width  # no column cut at the right edge
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        table = screen.query_one("#checkpoints")
        await wait_for(pilot, lambda: "size" in table.shown_columns)  # room for every column
    fake.release()
