"""The TUI under stress: resize storms, tiny terminals, runs deleted or unreadable while watched,
a trainer that dies at start. Each gives a message on screen, never a traceback.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import make_dataset
from tui.app import create_app
from tui_helpers import FakeRun, FakeSampler, settle, sync, typical_run, form_open, wait_for

SIZES = [(40, 12), (200, 60), (80, 24), (41, 13), (120, 20), (20, 6), (60, 40), (10, 3), (300, 80), (40, 12)]


def notifications(app) -> str:
    return "\n".join(n.message for n in app._notifications)


def screen_text(app) -> str:
    """Everything the current screen's Static-like widgets show, as plain text."""
    parts = []
    for widget in app.screen.query("*"):
        try:
            parts.append(str(widget.render()))
        except Exception:  # noqa: BLE001 — some widgets only render inside a compositor pass
            continue
    return "\n".join(parts)


async def open_screen(pilot, name: str, run, dataset: Path) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
    opener = {"runs": lambda: None, "datasets": app.open_datasets, "params": lambda: app.open_params(dataset),
              "resume": lambda: app.open_params(resume_run=run.run), "monitor": lambda: app.open_monitor(run.run),
              "help": app.action_help, "gpu": lambda: app.open_gpu(run.run)}[name]
    app.call_later(opener)
    expected = {"runs": "RunsScreen", "datasets": "DatasetsScreen", "params": "ParamsScreen",
                "resume": "ParamsScreen", "monitor": "MonitorScreen", "help": "HelpScreen", "gpu": "GpuScreen"}[name]
    await wait_for(pilot, lambda: type(app.screen).__name__ == expected)


@pytest.mark.parametrize("name", ["runs", "datasets", "params", "resume", "monitor", "help", "gpu"])
@sync
async def test_resize_storm_and_tiny_terminal_on_every_screen(tmp_path: Path, name: str) -> None:
    dataset = make_dataset(tmp_path / "datasets" / "voice", [f"c{i}|Line {i}." for i in range(3)])
    fake = typical_run(tmp_path / "runs")
    app = create_app(tmp_path / "datasets", tmp_path / "runs", gpu_sampler=FakeSampler, refresh_s=0.1)
    async with app.run_test(size=(40, 12)) as pilot:
        await open_screen(pilot, name, fake, dataset)
        await settle(pilot)
        rng = random.Random(name)
        for _ in range(3):  # three storms: sizes in random order, no pause between them
            for width, height in rng.sample(SIZES, len(SIZES)):
                await pilot.resize_terminal(width, height)
            await pilot.press("tab", "down", "tab")
        await pilot.resize_terminal(40, 12)
        await settle(pilot)
        await pilot.pause(0.3)  # a few refresh ticks at 40x12
        assert app.is_running and app._exception is None
        assert app.size == (40, 12)
    fake.release()


@sync
async def test_a_run_deleted_while_watched_is_a_message(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    fake.release()
    app = create_app(tmp_path / "datasets", tmp_path, gpu_sampler=FakeSampler, refresh_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        app.call_later(app.open_monitor, fake.run)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen" and app.screen.view)
        shutil.rmtree(fake.path)
        await wait_for(pilot, lambda: "UNKNOWN" in str(app.screen.query_one("#mon-title").render())
                       or "deleted" in notifications(app) or "cannot read" in notifications(app))
        await pilot.pause(0.3)
        assert app.is_running and app._exception is None
        await pilot.press("escape")  # back to the Runs screen, which no longer lists it
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        await app.screen.run_action("refresh")
        await wait_for(pilot, lambda: "No runs yet" in str(app.screen.query_one("#run-detail").render()))


@pytest.mark.slow
@sync
async def test_a_trainer_crashing_at_start_shows_failed_with_the_error(tmp_path: Path) -> None:
    """The real launcher starts a real trainer on a run whose config is broken."""
    from trainer import config as config_mod
    from trainer.launch import prepare_run
    from conftest import tiny_config

    run = prepare_run(tmp_path / "runs", config_mod.load(tiny_config(tmp_path)))
    run.config_path.write_text("[train]\nbatch_size = 0\n")
    app = create_app(tmp_path / "datasets", tmp_path / "runs", gpu_sampler=FakeSampler, refresh_s=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        app.launcher.start(run)
        app.call_later(app.open_monitor, run)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
        title = app.screen.query_one("#mon-title")
        await wait_for(pilot, lambda: "FAILED" in str(title.render()), timeout_s=120)
        assert "train.batch_size: 0 is out of range" in str(title.render())
        assert app.is_running and app._exception is None


def unreadable(path: Path, how: str) -> None:
    """Make `path` unreadable: permissions (when not root), or a folder in its place (always works)."""
    if how == "chmod":
        if os.geteuid() == 0:
            pytest.skip("root reads files whatever their mode")
        path.chmod(0)
    else:
        path.unlink()
        path.mkdir()


@pytest.mark.parametrize("how", ["chmod", "folder"])
@pytest.mark.parametrize("which", ["metrics.jsonl", "status.json", "train.log"])
@sync
async def test_an_unreadable_run_file_is_a_message(tmp_path: Path, which: str, how: str) -> None:
    fake = typical_run(tmp_path)
    fake.release()
    app = create_app(tmp_path / "datasets", tmp_path, gpu_sampler=FakeSampler, refresh_s=0.1)
    try:
        unreadable(fake.path / which, how)
        async with app.run_test(size=(80, 24)) as pilot:
            from textual.widgets import DataTable

            await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
            table = app.screen.query_one("#runs", DataTable)
            await wait_for(pilot, lambda: table.row_count == 1)  # listed, not hiding the others
            state = str(table.get_row_at(0)[1])
            assert state in ("not responding", "unknown", "unreadable"), state
            app.call_later(app.open_monitor, fake.run)
            await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
            await pilot.pause(0.5)
            await settle(pilot)
            assert app.is_running and app._exception is None
            shown = notifications(app) + str(app.screen.query_one("#mon-title").render())
            assert which in notifications(app) or "· UNKNOWN ·" in shown, shown
    finally:
        (fake.path / which).chmod(0o644) if (fake.path / which).is_file() else None


GARBAGE_NPY = {
    "random bytes": lambda: bytes(range(256)) * 4,
    "empty file": lambda: b"",
    "truncated": lambda: _npy(np.ones((60, 20), dtype=np.float32))[:200],
    "3-D": lambda: _npy(np.ones((2, 3, 4), dtype=np.float32)),
    "0x0": lambda: _npy(np.zeros((0, 0), dtype=np.float32)),
    "NaN and inf": lambda: _npy(np.array([[np.nan, np.inf], [-np.inf, 1.0]], dtype=np.float32)),
    "object pickle": lambda: _npy(np.array([[{"a": 1}]], dtype=object)),
    "strings": lambda: _npy(np.array([["a", "b"]])),
}


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", list(GARBAGE_NPY))
@sync
async def test_a_garbage_alignment_picture_is_a_message(tmp_path: Path, kind: str) -> None:
    fake = typical_run(tmp_path)
    fake.run.alignment_path(400).write_bytes(GARBAGE_NPY[kind]())
    app = create_app(tmp_path / "datasets", tmp_path, gpu_sampler=FakeSampler, refresh_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        app.call_later(app.open_monitor, fake.run)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
        await pilot.pause(0.4)
        await settle(pilot)
        await pilot.press("m", "m")  # mel and back
        await pilot.resize_terminal(40, 12)
        await pilot.pause(0.2)
        assert app.is_running and app._exception is None
        picture_title = str(app.screen.query_one("#picture").border_title)
        assert "cannot read" in picture_title or "alignment · step 400" in picture_title \
            or "cannot read" in notifications(app), (picture_title, notifications(app))
    fake.release()


@sync
async def test_run_names_from_the_parameters_screen_cannot_leave_the_runs_folder(tmp_path: Path) -> None:
    from textual.widgets import Input

    from tui_helpers import FakeLauncher

    dataset = make_dataset(tmp_path / "datasets" / "voice", [f"c{i}|Line {i}." for i in range(3)])
    launcher = FakeLauncher()
    start = time.time()
    runs = tmp_path / "work" / "runs"
    app = create_app(tmp_path / "datasets", runs, launcher=launcher, gpu_sampler=FakeSampler)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        app.call_later(app.open_params, dataset)
        await wait_for(pilot, lambda: form_open(app))
        for bad in ("../escape", "../../etc/cron.d/x", "/tmp/abs", "a/../../b", "..", "name with space"):
            app.screen.query_one("#run-name", Input).value = bad
            await settle(pilot)
            await pilot.press("ctrl+l")
            await settle(pilot)
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert "not allowed" in str(app.screen.query_one("#name-error").render())
        assert launcher.prepared == [] and launcher.started == []
        assert not runs.exists() or list(runs.iterdir()) == []
        assert not (tmp_path / "work" / "configs").exists()
        assert {p.name for p in tmp_path.iterdir()} <= {"datasets", "work"}
        assert not [p for p in Path(tmp_path.anchor, "tmp").glob("abs*") if p.stat().st_mtime > start]
        assert "problem(s) to fix first" in notifications(app)


@sync
async def test_delete_refuses_a_run_that_is_a_link_out_of_the_runs_folder(tmp_path: Path) -> None:
    from textual.widgets import DataTable

    runs = tmp_path / "runs"
    precious = FakeRun(tmp_path / "elsewhere", "precious_20231101_080000", state="stopped", hold_lock=False)
    runs.mkdir()
    (runs / "linked_20231101_080000").symlink_to(precious.path)
    app = create_app(tmp_path / "datasets", runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#runs", DataTable).row_count == 1)
        await pilot.press("d")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_for(pilot, lambda: "refusing to delete" in notifications(app))
        assert (precious.path / "config.toml").is_file() and (runs / "linked_20231101_080000").is_symlink()
