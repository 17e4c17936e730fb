"""Datasets screen: sizes of a valid dataset, problems with file:line of an invalid one, enter → form."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.widgets import OptionList

from conftest import DEMO, make_dataset
from tui.app import create_app
from tui_helpers import sync, form_open, wait_for


def detail(app) -> str:
    return str(app.screen.query_one("#dataset-detail").render())


async def open_datasets(pilot) -> None:
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "RunsScreen")
    await pilot.press("n")
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "DatasetsScreen")


def datasets_root(tmp_path: Path) -> Path:
    root = tmp_path / "datasets"
    shutil.copytree(DEMO, root / "demo", ignore=shutil.ignore_patterns(".voxtop"))
    lines = ["ok1|A fine sentence.", "broken line without separator", "ok2|Another one.", "ok1|Duplicate."]
    make_dataset(root / "zbad", lines, wavs={"ok1": {}})
    return root


@sync
async def test_valid_dataset_shows_size_and_small_warning(tmp_path: Path) -> None:
    app = create_app(datasets_root(tmp_path), tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_datasets(pilot)
        await wait_for(pilot, lambda: "clips        150" in detail(app))
        text = detail(app)
        assert "total        0:05:30" in text and "mean clip    2.20 s" in text
        assert "WARNING: only 5.5 minutes of audio" in text


@sync
async def test_invalid_dataset_lists_problems_with_file_and_line(tmp_path: Path) -> None:
    app = create_app(datasets_root(tmp_path), tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_datasets(pilot)
        await wait_for(pilot, lambda: "clips        150" in detail(app))
        await pilot.press("down")
        await wait_for(pilot, lambda: "INVALID" in detail(app))
        text = detail(app)
        assert "metadata.csv:2: malformed" in text
        assert "metadata.csv:3: wavs/ok2.wav is listed but does not exist" in text
        assert "metadata.csv:4: duplicate id 'ok1'" in text
        await pilot.press("enter")  # refused: stays here with a message
        await pilot.pause(0.05)
        assert type(app.screen).__name__ == "DatasetsScreen"


@sync
async def test_enter_opens_parameters_for_the_dataset(tmp_path: Path) -> None:
    root = datasets_root(tmp_path)
    app = create_app(root, tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_datasets(pilot)
        await wait_for(pilot, lambda: "clips        150" in detail(app))
        assert app.screen.query_one("#datasets", OptionList).option_count == 2
        await pilot.press("enter")
        await wait_for(pilot, lambda: form_open(app))
        assert app.screen.raw_values()["data.dataset"] == str(root / "demo")


@sync
async def test_empty_datasets_folder_explains_the_format(tmp_path: Path) -> None:
    app = create_app(tmp_path / "nothing", tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_datasets(pilot)
        await wait_for(pilot, lambda: "LJSpeech format" in detail(app))
