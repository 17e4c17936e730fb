"""The first screen offers the demo: t opens the form from configs/demo.toml, ctrl+l launches it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from conftest import DEMO, ROOT
from tui.app import create_app
from tui_helpers import FakeLauncher, FakeSampler, sync, form_open, wait_for

DEMO_CONFIG = ROOT / "configs" / "demo.toml"


def project(tmp_path: Path) -> tuple[Path, Path]:
    """A project folder as a fresh clone has it: datasets/demo, configs/demo.toml, no runs yet."""
    datasets = tmp_path / "datasets"
    shutil.copytree(DEMO, datasets / "demo", ignore=shutil.ignore_patterns(".voxtop"))
    (tmp_path / "configs").mkdir()
    shutil.copy(DEMO_CONFIG, tmp_path / "configs" / "demo.toml")
    return datasets, tmp_path / "runs"


@sync
async def test_t_then_ctrl_l_trains_the_demo_from_its_shipped_config(tmp_path: Path) -> None:
    from trainer import config as config_mod

    datasets, runs = project(tmp_path)
    launcher = FakeLauncher()
    app = create_app(datasets, runs, launcher=launcher, gpu_sampler=FakeSampler)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        detail = await wait_for(pilot, lambda: str(app.screen.query_one("#run-detail").render()))
        assert "Press t, then ctrl+l, to train a short demo" in " ".join(detail.split())
        await pilot.press("t")
        await wait_for(pilot, lambda: form_open(app))
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: launcher.started)
    shipped = config_mod.load(DEMO_CONFIG)
    launched = launcher.prepared[0]
    assert Path(launched.data.dataset).resolve() == (datasets / "demo").resolve()
    for section, key in (("train", "epochs"), ("train", "batch_size"), ("train", "learning_rate"),
                         ("checkpoint", "every_steps"), ("model", "preset")):
        assert getattr(getattr(launched, section), key) == getattr(getattr(shipped, section), key), key


@sync
async def test_without_a_demo_dataset_t_says_so(tmp_path: Path) -> None:
    (tmp_path / "datasets").mkdir()
    app = create_app(tmp_path / "datasets", tmp_path / "runs", launcher=FakeLauncher(), gpu_sampler=FakeSampler)
    notes: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        app.notify = lambda message, **_: notes.append(message)  # type: ignore[method-assign]
        await pilot.press("t")
        await wait_for(pilot, lambda: notes)
        assert notes[0].startswith("no demo dataset at") and type(app.screen).__name__ == "RunsScreen"


def test_the_real_terminal_shows_the_demo_two_keys_away(tmp_path: Path) -> None:
    """`voxtop` as ./run starts it, in tmux at 80x24: the hint, then t opens the demo's form."""
    import pytest

    from test_tmux import VOXTOP, Tmux

    if shutil.which("tmux") is None or not VOXTOP.exists():
        pytest.skip("needs tmux and the .venv voxtop script")
    project(tmp_path)
    tmux = Tmux(f"voxtop-demo-{tmp_path.name}")
    try:
        # ./run's last line, run from the project folder
        tmux.start(f"cd {tmp_path} && exec {VOXTOP} --datasets datasets --runs runs", width=80, height=24)
        tmux.wait_for(lambda s: "Press t, then ctrl+l" in s and " t Demo " in s)  # the hint, and the footer
        tmux.keys("t")
        tmux.wait_for(lambda s: "Epochs" in s and "400" in s)  # configs/demo.toml's epochs
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "Press t, then ctrl+l" in s)
        tmux.keys("q")
        deadline = time.monotonic() + 10
        while tmux.alive():
            assert time.monotonic() < deadline, "voxtop did not quit on q"
            time.sleep(0.1)
    finally:
        tmux("kill-server")
