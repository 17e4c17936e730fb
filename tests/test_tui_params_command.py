"""Parameters: saving never replaces a file silently; the command shown is exactly what ctrl+l runs."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from textual.widgets import Input

from conftest import DEMO, ROOT
from tui.app import create_app
from tui_helpers import FakeLauncher, FakeSampler, sync, typical_run, form_open, wait_for

SHIPPED_DEMO = ROOT / "configs" / "demo.toml"


def _setup(tmp_path: Path, launcher: FakeLauncher | None = None):
    """datasets/demo and the shipped configs/demo.toml side by side, as in a fresh clone."""
    root = tmp_path / "datasets"
    shutil.copytree(DEMO, root / "demo", ignore=shutil.ignore_patterns(".voxtop"))
    (tmp_path / "configs").mkdir()
    shutil.copy(SHIPPED_DEMO, tmp_path / "configs" / "demo.toml")
    app = create_app(root, tmp_path / "runs", launcher=launcher or FakeLauncher(), gpu_sampler=FakeSampler)
    return app, root


async def _open_form(pilot, dataset: Path) -> None:
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "RunsScreen")
    pilot.app.call_later(pilot.app.open_params, dataset=dataset)
    await wait_for(pilot, lambda: form_open(pilot.app))
    await wait_for(pilot, lambda: "steps/epoch" in str(pilot.app.screen.query_one("#estimates").render()))


def _set(app, key: str, value: str) -> None:
    app.screen.query_one("#f-" + key.replace(".", "-"), Input).value = value


@sync
async def test_ctrl_s_never_overwrites_the_shipped_config_without_asking(tmp_path: Path) -> None:
    app, root = _setup(tmp_path)
    shipped = tmp_path / "configs" / "demo.toml"
    original = shipped.read_bytes()
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_form(pilot, root / "demo")
        assert "from " in str(app.screen.query_one("#title").render())  # started from the saved config
        assert app.screen.raw_values()["train.epochs"] == tomllib.loads(original.decode())["train"]["epochs"]
        _set(app, "train.epochs", "80")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ChoiceScreen")
        await pilot.press("escape")  # cancel: nothing written
        await wait_for(pilot, lambda: form_open(app))
        assert shipped.read_bytes() == original and not (tmp_path / "configs" / "demo-1.toml").exists()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ChoiceScreen")
        await pilot.press("n")  # save under a new name
        copy = tmp_path / "configs" / "demo-1.toml"
        await wait_for(pilot, copy.exists)
        assert shipped.read_bytes() == original
        assert "epochs = 80" in copy.read_text() and 'dataset = "../datasets/demo"' in copy.read_text()
        await wait_for(pilot, lambda: "demo-1.toml --name demo" in app.screen.command)
        assert "--set" not in app.screen.command  # the form is now that file
        _set(app, "train.epochs", "90")  # the form's own file: saved again without a question
        await pilot.pause(0.1)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "epochs = 90" in copy.read_text())
        assert form_open(app) and shipped.read_bytes() == original
        copy.write_text(copy.read_text() + "# edited by hand\n")  # changed behind the form's back: ask again
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ChoiceScreen")
        await pilot.press("o")
        await wait_for(pilot, lambda: "# edited by hand" not in copy.read_text())
        assert shipped.read_bytes() == original


def _run_shown_command(command: str, cwd: Path) -> Path:
    """Run the form's `voxtop train ...` as `voxtop prepare ...` (same config, no training); the run made."""
    words = shlex.split(command)
    assert words[0] == "voxtop"
    words[words.index("train")] = "prepare"
    done = subprocess.run([sys.executable, "-m", "tui.cli", *words[1:]], capture_output=True, text=True,
                          cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


@sync
async def test_the_command_shown_runs_exactly_the_config_the_form_launches(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    app, root = _setup(tmp_path, launcher)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_form(pilot, root / "demo")
        # the user's edits: back to values that are the schema's defaults but not demo.toml's
        for key, value in (("train.epochs", "500"), ("train.batch_size", "32")):
            _set(app, key, value)
        app.screen.query_one("#advanced").collapsed = False
        await wait_for(pilot, lambda: app.screen.query("#f-train-learning_rate"))
        _set(app, "train.learning_rate", "0.0012345678")
        _set(app, "data.alignment_text", "It's a test, isn't it?")
        await wait_for(pilot, lambda: "learning_rate" in app.screen.command and "alignment_text" in app.screen.command)
        command = app.screen.command
        assert "train.epochs=500" in command and "train.batch_size=32" in command
        shown = str(app.screen.query_one("#command").render())
        assert shown.replace("\n", " ").startswith(command[:60])
        await pilot.press("ctrl+o")  # the whole command, never cut off
        await wait_for(pilot, lambda: type(app.screen).__name__ == "TextScreen")
        assert command in str(app.screen.query_one("#text-dialog-body").render()).replace("\n", "")
        await pilot.press("escape")
        await wait_for(pilot, lambda: form_open(app))
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: launcher.started)
    launched = launcher.started[0][0]
    prepared = _run_shown_command(command, Path.cwd())
    assert prepared.parent == launched.parent and prepared.name.startswith("demo_")
    assert (prepared / "config.toml").read_text() == (launched / "config.toml").read_text()


@sync
async def test_the_resume_form_shows_the_resume_command(tmp_path: Path) -> None:
    app, _ = _setup(tmp_path)
    fake = typical_run(tmp_path / "runs")
    fake.end("stopped", 400, "stopped")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("#runs") and app.screen.query_one("#runs").row_count == 1)
        await pilot.press("p")
        await wait_for(pilot, lambda: form_open(app))
        await wait_for(pilot, lambda: "resume" in app.screen.command)
        assert app.screen.command == (f"voxtop --runs {tmp_path / 'runs'} resume {fake.run.name} "
                                      f"--checkpoint {fake.run.checkpoint_path(400)}")
        app.screen.query_one("#checkpoint").value = str(fake.run.checkpoint_path(200))
        await wait_for(pilot, lambda: app.screen.command.endswith("step-00000200.pt"))


@sync
async def test_escape_on_an_edited_form_asks_before_discarding_it(tmp_path: Path) -> None:
    app, root = _setup(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_form(pilot, root / "demo")
        await pilot.press("escape")  # nothing edited: straight back
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        app.call_later(app.open_params, dataset=root / "demo")
        await wait_for(pilot, lambda: form_open(app))
        await pilot.pause(0.2)
        _set(app, "train.epochs", "61")
        await pilot.pause(0.1)
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("n")
        await wait_for(pilot, lambda: form_open(app))
        assert app.screen.raw_values()["train.epochs"] == 61
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
