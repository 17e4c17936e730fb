"""Form fields keep every key in the order typed, also when a terminal delivers them in one read."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual import events
from textual.widgets import Input

from conftest import DEMO
from tui.app import create_app
from tui_helpers import FakeLauncher, FakeSampler, sync, form_open, wait_for


def _app(tmp_path: Path):
    root = tmp_path / "datasets"
    shutil.copytree(DEMO, root / "demo", ignore=shutil.ignore_patterns(".voxtop"))
    return create_app(root, tmp_path / "runs", launcher=FakeLauncher(), gpu_sampler=FakeSampler), root


def _burst(app, *keys: str) -> None:
    """Post keys the way the driver does for one read of the terminal: all queued before any is handled."""
    characters = {"ctrl+a": "\x01", "ctrl+k": "\x0b", "ctrl+e": "\x05", "backspace": "\x7f"}
    for key in keys:
        app.post_message(events.Key(key, characters.get(key, key)))


@sync
async def test_clearing_a_field_and_typing_at_once_keeps_the_typed_value(tmp_path: Path) -> None:
    app, root = _app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        app.call_later(app.open_params, dataset=root / "demo")
        await wait_for(pilot, lambda: form_open(app))
        for key, typed, expected in (("train.epochs", "12", 12), ("train.batch_size", "8", 8),
                                     ("train.epochs", "340", 340)):
            field = app.screen.query_one("#f-" + key.replace(".", "-"), Input)
            field.focus()
            await pilot.pause()
            _burst(app, "ctrl+a", "ctrl+k", *typed)
            await wait_for(pilot, lambda: app.screen.raw_values()[key] == expected)
            assert field.value == typed and not app.screen.errors
        name = app.screen.query_one("#run-name", Input)
        name.focus()
        await pilot.pause()
        _burst(app, "ctrl+e", "backspace", "backspace", "x", "y")
        await wait_for(pilot, lambda: name.value == "dexy")
