"""A DC-TTS voice in the TUI: the Runs screen shows its two runs as a pair, the Monitor switches between them."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from trainer import config as config_mod
from tui.app import create_app
from tui_helpers import FakeRun, FakeSampler, sync, wait_for


def paired(runs_root: Path, prefix: str = "voice", stamp: str = "20231114_221320") -> tuple[FakeRun, FakeRun]:
    """Two fake runs whose config.toml name each other, as `voxtop train` of a dctts config makes them."""
    names = {network: f"{prefix}-{network}_{stamp}" for network in ("text2mel", "ssrn")}
    fakes = []
    for network, other in (("text2mel", "ssrn"), ("ssrn", "text2mel")):
        fake = FakeRun(runs_root, names[network], hold_lock=False, state="finished")
        config = config_mod.load(fake.run.config_path, run_config=True)
        config.model.name, config.model.network, config.model.pair = "dctts", network, names[other]
        fake.run.config_path.write_text(config_mod.dumps(config), encoding="utf-8")
        fakes.append(fake)
    return fakes[0], fakes[1]


def names_in_table(app) -> list[str]:
    table = app.screen.query_one("#runs", DataTable)
    return [str(table.get_row_at(row)[0]) for row in range(table.row_count)]


@sync
async def test_runs_screen_shows_the_pair_together(tmp_path: Path) -> None:
    text2mel, ssrn = paired(tmp_path)
    FakeRun(tmp_path, "voice-solo_20231114_221320", hold_lock=False, state="finished")  # sorts between them
    app = create_app(tmp_path / "datasets", tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_for(pilot, lambda: any(name.startswith("┌") for name in names_in_table(app)))
        names = names_in_table(app)
        first = names.index(f"┌ {text2mel.run.name}")
        assert names[first + 1] == f"└ {ssrn.run.name}" and "voice-solo_20231114_221320" in names
        table = app.screen.query_one("#runs", DataTable)
        table.move_cursor(row=first)
        detail = app.screen.query_one("#run-detail")
        await wait_for(pilot, lambda: f"pair of {ssrn.run.name}" in str(detail.render()))


@sync
async def test_monitor_switches_to_the_other_network_with_w(tmp_path: Path) -> None:
    text2mel, ssrn = paired(tmp_path)
    alone = FakeRun(tmp_path, "solo_20231114_221320", hold_lock=False, state="finished")
    app = create_app(tmp_path / "datasets", tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(100, 30)) as pilot:
        app.open_monitor(text2mel.run)
        await wait_for(pilot, lambda: getattr(app.screen, "run", None) is not None
                       and app.screen.run.name == text2mel.run.name)
        await pilot.press("w")
        await wait_for(pilot, lambda: getattr(app.screen, "run", None) is not None
                       and app.screen.run.name == ssrn.run.name)
        await pilot.press("w")
        await wait_for(pilot, lambda: app.screen.run.name == text2mel.run.name)
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")  # one Monitor at a time
        app.open_monitor(alone.run)
        await wait_for(pilot, lambda: getattr(app.screen, "run", None) is not None
                       and app.screen.run.name == alone.run.name)
        await pilot.press("w")  # no pair: it says so and stays
        await pilot.pause()
        assert app.screen.run.name == alone.run.name
