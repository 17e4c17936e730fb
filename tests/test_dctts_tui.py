"""A DC-TTS voice in the TUI: the Runs screen shows its two runs as a pair, the Monitor switches between them."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from trainer import config as config_mod
from trainer.rundir import RunDir
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


@sync
async def test_a_pair_launched_from_the_form_starts_two_trainers_and_both_show_in_the_monitor(tmp_path: Path) -> None:
    """ctrl+l on a dctts config starts Text2Mel and SSRN (real trainers); the Monitor shows one, w the other."""
    import shutil

    import tomli_w

    from conftest import DEMO
    from tui_helpers import form_open

    datasets, runs, configs = tmp_path / "datasets", tmp_path / "runs", tmp_path / "configs"
    shutil.copytree(DEMO, datasets / "demo")  # with its feature cache: the trainers start sooner
    configs.mkdir()
    (configs / "demo.toml").write_text(tomli_w.dumps({
        "data": {"dataset": str(datasets / "demo"), "fraction": 0.08, "val_fraction": 0.1},
        "model": {"name": "dctts", "preset": "tiny"},
        "train": {"epochs": 100, "batch_size": 4, "max_steps": 3, "max_decoder_steps": 20},
        "checkpoint": {"every_steps": 100}, "health": {"enabled": False}}))
    app = create_app(datasets, runs, gpu_sampler=FakeSampler)
    async with app.run_test(size=(100, 30)) as pilot:
        app.open_params(dataset=datasets / "demo")
        await wait_for(pilot, lambda: form_open(app))
        app.screen.query_one("#advanced").collapsed = False  # the model's own parameters only
        await wait_for(pilot, lambda: len(app.screen.query("FieldRow")) > 20)
        await wait_for(pilot, lambda: {row.info.key: row.display for row in app.screen.query("FieldRow")}
                       .get("model.frames_per_step") is False)
        shown = {row.info.key: row.display for row in app.screen.query("FieldRow")}
        assert shown["model.preset"] and shown["model.network"] and not shown["train.gate_pos_weight"]
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: getattr(app.screen, "run", None) is not None, timeout_s=30)
        first = app.screen.run.name
        folders = sorted(p.name for p in runs.iterdir() if p.is_dir())
        assert [f.split("_")[0] for f in folders] == ["demo-ssrn", "demo-text2mel"] and first in folders
        pids = [RunDir(runs / f).read_status().get("pid") for f in folders]
        assert all(pids) and pids[0] != pids[1]  # two trainers
        await pilot.press("w")
        await wait_for(pilot, lambda: app.screen.run.name != first and app.screen.run.name in folders)
        for folder in folders:  # both train to their end
            run = RunDir(runs / folder)
            await wait_for(pilot, lambda run=run: (run.read_status() or {}).get("state") == "finished", timeout_s=180)
            assert [c.step for c in run.checkpoints()] == [3]
