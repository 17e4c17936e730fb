"""Text read from disk is data: never markup, never a terminal control sequence (TUI and CLI).

Run names, status errors, events, train.log lines, checkpoint tags and dataset folder names are
written by anyone: an OSC escape in one must not retitle the terminal, a CSI one must not clear
it, and Textual markup in one must neither crash the app nor become a clickable action.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.segment import Segment
from test_tmux import VOXTOP, Tmux, tmux  # noqa: F401  (the tmux fixture)
from tui_helpers import FakeLauncher, FakeSampler, sync, typical_run, wait_for

from conftest import DEMO, ROOT
from tui.plain import StripControls, plain, visible

TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
MARKUP = "[/][@click=app.quit]q[/]"
HOSTILE = f"x{TITLE}{CLEAR}{MARKUP}\x9b6n"


def assert_no_controls(text: str) -> None:
    bad = sorted({hex(ord(c)) for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0})
    assert not bad, f"control characters reached the output: {bad}"


def hostile_run(runs: Path, name: str = "demo_20231114_221320"):
    """A run whose every text field carries an escape sequence and markup."""
    fake = typical_run(runs, name)
    fake.event("lr_reduced", f"learning rate {HOSTILE}", level="info", step=300)
    fake.log(f"step 400 loss 0.5 {HOSTILE}")
    fake.checkpoint(500, val_loss=0.7, tags=(f"best{CLEAR}", MARKUP))
    fake.end("failed", 500, "failed", error=f"boom {HOSTILE}")
    return fake


def test_visible_shows_every_control_character_and_keeps_the_width() -> None:
    shown = visible(HOSTILE)
    assert "␛]0;pwned␇" in shown and "␛[2J" in shown and MARKUP in shown
    assert_no_controls(shown)
    assert len(shown) == len(HOSTILE)  # one stand-in per character: columns stay where they were
    assert visible("line one\nline two", keep_newlines=True) == "line one\nline two"
    assert visible("tab\there") == "tab␉here" and visible("plain") == "plain"
    assert plain(MARKUP).plain == MARKUP  # a Text: never parsed as markup


def test_the_line_filter_drops_what_is_left_and_keeps_cursor_controls() -> None:
    from rich.segment import ControlType

    cursor = Segment("", None, [(ControlType.CURSOR_UP, 1)])
    out = StripControls().apply([Segment(f"a{TITLE}b"), cursor], None)
    assert out[0].text == "a]0;pwnedb" and out[1] is cursor


@sync
async def test_the_tui_shows_hostile_runs_as_text_and_keeps_running(tmp_path: Path) -> None:
    from tui.app import create_app
    from tui.screens.monitor import MonitorScreen
    from tui.widgets.log_tail import LogTail

    runs = tmp_path / "runs"
    fake = hostile_run(runs)
    app = create_app(tmp_path / "datasets", runs, launcher=FakeLauncher(), gpu_sampler=FakeSampler, refresh_s=0.2)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("#runs") and app.screen.summaries)
        detail = str(app.screen.query_one("#run-detail").render())
        assert "boom x␛]0;pwned␇␛[2J[/][@click=app.quit]q[/]" in detail
        app.open_monitor(fake.run)
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.view is not None)
        await wait_for(pilot, lambda: any("␛[2J" in line for line in app.screen.query_one("#log", LogTail).rows(150, 20)))
        events = app.screen.query_one("#events", LogTail).rows(150, 20)
        assert any("learning rate x␛]0;pwned␇" in line for line in events), events
        table = app.screen.query_one("#checkpoints")
        cells = [str(table.get_cell_at((row, col))) for row in range(table.row_count) for col in range(len(table.columns))]
        assert any("best␛[2J" in cell for cell in cells) and any(MARKUP in cell for cell in cells), cells
        app.notify(f"a notification {HOSTILE}")
        await pilot.pause()
        assert app.is_running  # [/] in the error, the log and a tag crashed nothing


@sync
async def test_a_dataset_folder_named_like_markup_is_a_name_not_an_action(tmp_path: Path) -> None:
    from textual.widgets import OptionList

    from tui.app import create_app

    datasets = tmp_path / "datasets"
    name = "[@click=app.quit]demo"
    shutil.copytree(DEMO, datasets / name, ignore=shutil.ignore_patterns(".voxtop"))
    app = create_app(datasets, tmp_path / "runs", launcher=FakeLauncher(), gpu_sampler=FakeSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_datasets()
        await wait_for(pilot, lambda: app.screen.query("#datasets") and app.screen.query_one(
            "#datasets", OptionList).option_count)
        options = app.screen.query_one("#datasets", OptionList)
        assert str(options.get_option_at_index(0).prompt) == name
        await pilot.click("#datasets", offset=(3, 0))
        await pilot.pause(0.2)
        assert app.is_running


def test_the_cli_prints_hostile_text_visibly_and_json_keeps_it_exact(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    fake = hostile_run(runs)
    hidden = runs / f"demo{TITLE}_20231114_221321"
    fake.run.path.rename(hidden)

    def voxtop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tui.cli", "--runs", str(runs), *args], capture_output=True,
                              text=True, cwd=ROOT, timeout=60)

    listing = voxtop("runs")
    assert listing.returncode == 0, listing.stderr
    assert "demo␛]0;pwned␇_20231114_221321" in listing.stdout
    assert_no_controls(listing.stdout + listing.stderr)
    exact = json.loads(voxtop("runs", "--json").stdout)
    assert [run["name"] for run in exact] == [hidden.name]
    checkpoints = voxtop("checkpoints", str(hidden))
    assert checkpoints.returncode == 0 and "best␛[2J" in checkpoints.stdout
    assert_no_controls(checkpoints.stdout + checkpoints.stderr)
    watched = voxtop("watch", str(hidden))
    assert "␛]0;pwned␇" in watched.stdout
    assert_no_controls(watched.stdout + watched.stderr)
    missing = voxtop("checkpoints", f"nope{CLEAR}")
    assert missing.returncode == 1 and "nope␛[2J" in missing.stderr
    assert_no_controls(missing.stderr)


@pytest.mark.skipif(shutil.which("tmux") is None or not VOXTOP.exists(), reason="needs tmux and the .venv voxtop")
def test_an_escape_in_a_run_name_leaves_the_pane_title_alone(tmux: Tmux, tmp_path: Path) -> None:  # noqa: F811
    runs = tmp_path / "runs"
    fake = hostile_run(runs)
    fake.run.path.rename(runs / f"demo{TITLE}_20231114_221321")
    tmux.start(f"cd {ROOT} && exec {VOXTOP} --datasets {tmp_path / 'datasets'} --runs {runs}", width=140, height=40)
    tmux("select-pane", "-t", "vx", "-T", "voxtop-test-title")
    screen = tmux.wait_for(lambda s: "demo␛]0;pwned␇" in s)
    assert "pwned" not in tmux("display-message", "-p", "-t", "vx", "#{pane_title}")
    tmux.keys("Down")
    time.sleep(0.5)
    screen = tmux.wait_for(lambda s: "boom" in s)
    assert "␛[2J" in screen and "voxtop" in screen  # the screen was not cleared: the error shows as text
    assert tmux("display-message", "-p", "-t", "vx", "#{pane_title}").strip() == "voxtop-test-title"
    tmux.keys("q")
    deadline = time.monotonic() + 10
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tmux.alive()


@sync
async def test_a_metric_named_like_markup_is_picked_and_charted_as_text(tmp_path: Path) -> None:
    from tui.app import create_app
    from tui.screens.monitor import MonitorScreen

    runs = tmp_path / "runs"
    fake = typical_run(runs)
    for step in (410, 420):
        fake.record("train", step, epoch=0, loss=0.4, **{"[/]odd": 1.0 + step, f"esc{CLEAR}": 2.0})
    app = create_app(tmp_path / "datasets", runs, launcher=FakeLauncher(), gpu_sampler=FakeSampler, refresh_s=0.2)
    async with app.run_test(size=(140, 44)) as pilot:
        app.open_monitor(fake.run)
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.view is not None)
        screen = app.screen
        screen.query_one("#attention").focus()
        await pilot.press("slash")
        picker = await wait_for(pilot, lambda: type(app.screen).__name__ == "MetricPicker" and app.screen)
        assert "train/[/]odd" in picker.visible_names()
        await pilot.press(*"odd")
        await wait_for(pilot, lambda: picker.visible_names() == ["train/[/]odd"])
        await pilot.press("down", "space", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        chart = screen.query_one("#attention")
        await wait_for(pilot, lambda: "[/]odd" in chart.border_title.replace("\\", ""))
        assert app.is_running
    fake.release()
