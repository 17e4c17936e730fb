"""Parameters screen: defaults, inline validation, estimates, command line, save, launch, resume."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from textual.widgets import Input

from conftest import DEMO
from tui.app import create_app
from tui_helpers import FakeLauncher, FakeSampler, sync, typical_run, form_open, wait_for


def setup(tmp_path: Path, launcher: FakeLauncher | None = None):
    root = tmp_path / "datasets"
    shutil.copytree(DEMO, root / "demo", ignore=shutil.ignore_patterns(".voxtop"))
    return create_app(root, tmp_path / "runs", launcher=launcher or FakeLauncher(), gpu_sampler=FakeSampler), root


async def open_form(pilot, dataset: Path) -> None:
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "RunsScreen")
    pilot.app.call_later(pilot.app.open_params, dataset=dataset)
    await wait_for(pilot, lambda: form_open(pilot.app))


def text(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def set_field(app, key: str, value: str) -> None:
    app.screen.query_one("#f-" + key.replace(".", "-"), Input).value = value


@sync
async def test_defaults_estimates_and_command_line(tmp_path: Path) -> None:
    app, root = setup(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_form(pilot, root / "demo")
        screen = app.screen
        assert screen.raw_values()["train.batch_size"] == 32 and screen.raw_values()["train.epochs"] == 500
        await wait_for(pilot, lambda: "steps/epoch: 5" in text(app, "#estimates"))
        assert "total steps: 2500" in text(app, "#estimates")
        assert "340.0 MB (typical size)" in text(app, "#estimates")
        set_field(app, "train.epochs", "10")
        set_field(app, "train.batch_size", "16")
        await wait_for(pilot, lambda: "total steps: 90" in text(app, "#estimates"))
        # no saved config of this dataset: the command runs the file ctrl+s writes, which holds every value
        assert screen.command == f"voxtop --runs {tmp_path / 'runs'} train {tmp_path / 'configs' / 'demo.toml'} --name demo"
        assert text(app, "#command").startswith(f"ctrl+s saves {tmp_path / 'configs' / 'demo.toml'}, then: voxtop")


class NoGpuSampler:
    """What tui.gpu.Sampler reads on a machine without the NVIDIA driver."""

    def sample(self):
        from tui.gpu import HostReading, Reading

        return Reading([], HostReading(5.0, 1024.0, 8192.0), reason="no driver: libnvidia-ml.so not found")


@sync
async def test_without_a_gpu_the_form_suggests_the_tiny_preset_and_says_why(tmp_path: Path) -> None:
    app, root = setup(tmp_path)
    app.gpu_sampler = NoGpuSampler
    async with app.run_test(size=(100, 30)) as pilot:
        await open_form(pilot, root / "demo")
        await wait_for(pilot, lambda: app.screen.raw_values()["model.preset"] == "tiny")
        await wait_for(pilot, lambda: "No GPU found (no driver: libnvidia-ml.so not found)" in text(app, "#estimates"))
        assert app.screen.config is not None and app.screen.config.model.preset == "tiny"
    with_gpu, root = setup(tmp_path / "gpu")  # FakeSampler has a GPU: the published default stays
    async with with_gpu.run_test(size=(100, 30)) as pilot:
        await open_form(pilot, root / "demo")
        await wait_for(pilot, lambda: "steps/epoch" in text(with_gpu, "#estimates"))
        await pilot.pause(0.3)
        assert with_gpu.screen.raw_values()["model.preset"] == "full" and with_gpu.screen.gpu_note is None


@sync
async def test_typed_invalid_value_shows_the_schema_message_and_blocks_launch(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    app, root = setup(tmp_path, launcher)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_form(pilot, root / "demo")
        batch = app.screen.query_one("#f-train-batch_size", Input)
        batch.focus()
        batch.value = ""
        await pilot.press("0")
        row = app.screen.query_one("#row-f-train-batch_size")
        await wait_for(pilot, lambda: "out of range" in text(app, "#row-f-train-batch_size .error"))
        assert "allowed 1 to 4096" in text(app, "#row-f-train-batch_size .error")
        assert "1 problem(s)" in text(app, "#problems")
        assert row is not None
        await pilot.press("ctrl+l")
        await pilot.pause(0.05)
        assert launcher.prepared == [] and form_open(app)
        set_field(app, "train.batch_size", "abc")
        await wait_for(pilot, lambda: "is not a whole number" in text(app, "#row-f-train-batch_size .error"))


@sync
async def test_cross_field_problem_is_shown_on_the_field(tmp_path: Path) -> None:
    app, root = setup(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_form(pilot, root / "demo")
        assert not app.screen.query("#f-data-win")  # advanced fields are mounted when opened
        app.screen.query_one("#advanced").collapsed = False
        await wait_for(pilot, lambda: app.screen.query("#f-data-win"))
        set_field(app, "data.win", "2048")
        await wait_for(pilot, lambda: "larger than data.n_fft" in text(app, "#row-f-data-win .error"))
        set_field(app, "data.dataset", str(tmp_path / "nowhere"))
        await wait_for(pilot, lambda: "no folder" in text(app, "#row-f-data-dataset .error"))


@sync
async def test_bad_run_name_is_refused(tmp_path: Path) -> None:
    app, root = setup(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_form(pilot, root / "demo")
        app.screen.query_one("#run-name", Input).value = "my run/1"
        await wait_for(pilot, lambda: "is not allowed" in text(app, "#name-error"))


@sync
async def test_save_writes_the_toml(tmp_path: Path) -> None:
    app, root = setup(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_form(pilot, root / "demo")
        set_field(app, "train.epochs", "7")
        await pilot.press("ctrl+s")
        saved = tmp_path / "configs" / "demo.toml"
        await wait_for(pilot, saved.exists)
        config = tomllib.loads(saved.read_text())
        assert config["train"]["epochs"] == 7 and config["data"]["dataset"] == "../datasets/demo"  # beside configs/
        from trainer.config import load

        assert load(saved).data.dataset == str((root / "demo").resolve())


@sync
async def test_launch_writes_the_run_and_opens_the_monitor(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    app, root = setup(tmp_path, launcher)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_form(pilot, root / "demo")
        set_field(app, "train.epochs", "3")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
        assert len(launcher.started) == 1
        run_path, checkpoint = launcher.started[0]
        assert checkpoint is None and run_path.parent == tmp_path / "runs" and run_path.name.startswith("demo_")
        assert tomllib.loads((run_path / "config.toml").read_text())["train"]["epochs"] == 3
        assert [type(s).__name__ for s in app.screen_stack] == ["RunsScreen", "MonitorScreen"]


@sync
async def test_resume_offers_checkpoints_newest_first(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    app, _ = setup(tmp_path, launcher)
    fake = typical_run(tmp_path / "runs")
    fake.end("stopped", 400, "stopped")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        await wait_for(pilot, lambda: app.screen.query_one("#runs").row_count == 1)
        await pilot.press("p")
        await wait_for(pilot, lambda: form_open(app))
        select = app.screen.query_one("#checkpoint")
        assert [str(option[0]) for option in select._options][:2] == [
            "step 400 (step-00000400.pt)", "step 200 (step-00000200.pt)"]
        assert not app.screen.query_one("#f-train-epochs", Input).disabled  # "train N more epochs"
        assert app.screen.query_one("#f-model-preset").disabled  # the checkpoint's weights fix it
        select.value = str(fake.run.checkpoint_path(200))
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
        assert launcher.started == [(fake.path, fake.run.checkpoint_path(200))]
