"""Resume with other settings: `voxtop resume RUN --set train.epochs=N` and the resume form train longer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from textual.widgets import Input

from conftest import only_run, tiny_config, voxtop
from tui.app import create_app
from tui_helpers import FakeLauncher, FakeSampler, sync, typical_run, form_open, wait_for


def test_resume_refuses_settings_the_checkpoint_fixes_and_changes_nothing(tmp_path: Path) -> None:
    fake = typical_run(tmp_path / "runs")
    fake.end("stopped", 400, "stopped")
    before = fake.run.config_path.read_bytes()
    result = voxtop("resume", fake.run.name, "--set", "model.preset=full", "--set", "train.epochs=900",
                    runs=tmp_path / "runs", timeout=60)
    assert result.returncode == 1
    assert "model.preset cannot change when a run resumes" in result.stderr and "train.pretrained" in result.stderr
    assert fake.run.config_path.read_bytes() == before
    bad = voxtop("resume", fake.run.name, "--set", "train.epochs=0", runs=tmp_path / "runs", timeout=60)
    assert bad.returncode == 1 and "train.epochs" in bad.stderr and fake.run.config_path.read_bytes() == before


def test_apply_resume_settings_writes_the_config_and_says_so_in_the_log(tmp_path: Path) -> None:
    from trainer.resume_settings import apply_resume_settings

    fake = typical_run(tmp_path / "runs")
    fake.end("stopped", 400, "stopped")
    changes = apply_resume_settings(fake.run, ["train.epochs=900", "checkpoint.every_steps=50"])
    assert changes == ["train.epochs: 500 -> 900", "checkpoint.every_steps: 1000 -> 50"]
    config = tomllib.loads(fake.run.config_path.read_text())
    assert config["train"]["epochs"] == 900 and config["checkpoint"]["every_steps"] == 50
    assert "voxtop resume: set train.epochs: 500 -> 900" in fake.run.log_path.read_text()
    assert apply_resume_settings(fake.run, ["train.epochs=900"]) == []  # nothing new: nothing written


@sync
async def test_the_resume_form_trains_more_epochs(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    app = create_app(tmp_path / "datasets", tmp_path / "runs", launcher=launcher, gpu_sampler=FakeSampler)
    fake = typical_run(tmp_path / "runs", steps=400)
    fake.end("stopped", 400, "stopped")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("#runs") and app.screen.query_one("#runs").row_count == 1)
        await pilot.press("p")
        await wait_for(pilot, lambda: form_open(app))
        app.screen.query_one("#f-train-epochs", Input).value = "800"
        await wait_for(pilot, lambda: "--set train.epochs=800" in app.screen.command)
        assert app.screen.command.startswith(f"voxtop --runs {tmp_path / 'runs'} resume {fake.run.name} ")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: launcher.started)
    assert tomllib.loads(fake.run.config_path.read_text())["train"]["epochs"] == 800
    assert launcher.started == [(fake.path, fake.run.checkpoint_path(400))]


@pytest.mark.slow
def test_a_finished_tiny_run_resumed_with_more_steps_trains_on(tmp_path: Path) -> None:
    from trainer.rundir import RunDir

    runs = tmp_path / "runs"
    first = voxtop("train", str(tiny_config(tmp_path)), "--name", "more", runs=runs)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    run = RunDir(only_run(runs))
    assert run.read_status()["step"] == 6
    again = voxtop("resume", run.name, "--set", "train.max_steps=9", runs=runs)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "config.toml: train.max_steps: 6 -> 9" in again.stdout
    status = run.read_status()
    assert status["state"] == "finished" and status["step"] == 9
