"""The checkpoint table in the Monitor: the picture follows the chosen row; enter lists the checkpoint's
audio with its files, plays a clip with the machine's player (detached), and offers export and resume."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from health_helpers import write_health
from tui.app import create_app
from tui.screens.checkpoint import CheckpointScreen
from tui_helpers import FakeLauncher, FakeSampler, settle, sync, typical_run, wait_for
from test_tui_monitor import open_monitor


def fake_player(folder: Path, name: str = "aplay", seconds: float = 30.0) -> Path:
    """A player on PATH that writes its arguments to a file, then plays for `seconds` (sleeps)."""
    folder.mkdir(parents=True, exist_ok=True)
    played = folder / "played.txt"
    script = folder / name
    script.write_text(f'#!/bin/sh\necho "$@" >> "{played}"\nexec sleep {seconds}\n', encoding="utf-8")
    script.chmod(0o755)
    return played


def with_audio(fake, step: int) -> None:
    """The checkpoint's sample and the wav files of its health record, as the trainer writes them."""
    fake.run.sample_path(step).write_bytes(b"RIFF-sample")
    folder = fake.run.health_folder(step)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(12):
        (folder / f"{index:02d}.wav").write_bytes(b"RIFF")
    write_health(fake, step, 7, 3)


@sync
async def test_the_picture_follows_the_checkpoint_chosen_in_the_table(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)  # checkpoints at 200 and 400; the picture shows the newest
    older = np.zeros((60, 20), dtype=np.float32)
    older[:, 0] = 1.0  # step 200 attended to the first character only: a picture unlike step 400's
    np.save(fake.run.alignment_path(200), older)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        picture = screen.query_one("#picture")
        assert "alignment · step 400" in picture.border_title
        newest = str(picture.render())
        table = screen.query_one("#checkpoints")
        table.focus()
        await pilot.press("down")  # from step 400 to step 200
        await wait_for(pilot, lambda: "alignment · selected step 200" in picture.border_title)
        assert str(picture.render()) != newest
        await pilot.press("m")
        await wait_for(pilot, lambda: "predicted mel · selected step 200" in picture.border_title)
        await pilot.press("m", "up")
        await wait_for(pilot, lambda: picture.border_title.startswith("alignment · step 400"))
    fake.release()


@sync
async def test_enter_on_a_checkpoint_lists_its_audio_and_plays_it_detached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    fake = typical_run(runs)
    with_audio(fake, 400)
    fake.end("stopped", 400, "stopped")
    played = fake_player(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    launcher = FakeLauncher()
    app = create_app(tmp_path, runs, gpu_sampler=FakeSampler, launcher=launcher)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        screen.query_one("#checkpoints").focus()
        await pilot.press("enter")  # on step 400, where the table starts
        dialog = await wait_for(pilot, lambda: isinstance(app.screen, CheckpointScreen) and app.screen)
        heading = str(dialog.query_one(".title").render())
        assert "checkpoint step 400" in heading and "reads to the end 7/12 · understood 3/12" in heading
        where = str(dialog.query_one("#checkpoint-files").render())
        assert str(fake.run.samples_dir) in where and str(fake.run.health_folder(400)) in where
        table = dialog.query_one("#checkpoint-audio")
        assert table.row_count == 13  # the alignment sentence's sample, then 12 held-out sentences
        assert [str(c) for c in table.get_row_at(0)[:2]] == ["sample", "samples/step-00000400.wav"]
        assert [str(c) for c in table.get_row_at(1)[:3]] == [
            "01", "health/step-00000400/00.wav", "The birch canoe slid on the smooth planks."]
        assert "reads to the end" in str(table.get_row_at(1)[3])
        assert "aplay" in str(dialog.query_one("#checkpoint-keys").render())

        await pilot.press("down", "enter")  # the first held-out sentence; the player sleeps 30 s
        started = time.monotonic()
        await wait_for(pilot, lambda: played.is_file() and played.read_text().strip())
        assert played.read_text().split() == ["-q", str(fake.run.health_folder(400) / "00.wav")]
        await pilot.press("escape")  # the UI answers at once while the clip plays
        await wait_for(pilot, lambda: app.screen is screen)
        assert time.monotonic() - started < 5
        process = screen.player._process
        assert process is not None and process.poll() is None  # still playing, detached from the UI
        await pilot.press("enter")
        dialog = await wait_for(pilot, lambda: isinstance(app.screen, CheckpointScreen) and app.screen)
        await pilot.press("x")
        await wait_for(pilot, lambda: process.poll() is not None)  # x stops it
        await pilot.press("r")  # resume from it: the Monitor asks first
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        assert "from step 400" in str(app.screen.query_one("#question").render())
        await pilot.press("n")
    fake.release()


@sync
async def test_without_a_player_the_dialog_says_where_the_file_is(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fake = typical_run(tmp_path)
    with_audio(fake, 400)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    notes: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        screen.query_one("#checkpoints").focus()
        await pilot.press("enter")
        dialog = await wait_for(pilot, lambda: isinstance(app.screen, CheckpointScreen) and app.screen)
        assert "no audio player here" in str(dialog.query_one("#checkpoint-keys").render())
        app.notify = lambda message, **_: notes.append(message)  # type: ignore[method-assign]
        await pilot.press("enter")
        await wait_for(pilot, lambda: notes)
        assert "no audio player" in notes[0] and str(fake.run.sample_path(400)) in notes[0]
    fake.release()


@sync
async def test_export_from_the_monitor_asks_then_runs_voxtop_export(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    fake = typical_run(runs)  # its checkpoints are bytes, not torch files: export reports that
    app = create_app(tmp_path, runs, gpu_sampler=FakeSampler)
    notes: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        screen.notify = lambda message, **_: notes.append(message)  # type: ignore[method-assign]
        await pilot.press("e")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        question = str(app.screen.query_one("#question").render())
        assert f"Export step 400 of {fake.run.name} to {tmp_path / 'exports' / (fake.run.name + '-step400')}" \
            in question.replace("\n", " ")
        await pilot.press("y")
        await wait_for(pilot, lambda: any(n.startswith("export failed") for n in notes), timeout_s=120)
        assert notes[0].startswith("exporting to ")
        assert "voxtop checkpoint" in notes[-1] or "cannot read" in notes[-1]
        await settle(pilot)
    fake.release()
