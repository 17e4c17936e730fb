"""Parameters side panel: the no-GPU note follows the preset chosen; the disk estimate of a tiny run."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.widgets import Select

from conftest import DEMO
from tui.app import create_app
from tui_helpers import FakeLauncher, sync, form_open, wait_for


class NoGpuSampler:
    """What tui.gpu.Sampler reads on a machine without the NVIDIA driver."""

    def sample(self):
        from tui.gpu import HostReading, Reading

        return Reading([], HostReading(5.0, 1024.0, 8192.0), reason="no driver")


@sync
async def test_choosing_full_without_a_gpu_changes_the_note_and_tiny_checkpoints_are_9_mb(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    shutil.copytree(DEMO, root / "demo", ignore=shutil.ignore_patterns(".voxtop"))
    app = create_app(root, tmp_path / "runs", launcher=FakeLauncher(), gpu_sampler=NoGpuSampler)

    def side() -> str:
        return str(app.screen.query_one("#estimates").render())

    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        app.call_later(app.open_params, dataset=root / "demo")
        await wait_for(pilot, lambda: form_open(app))
        await wait_for(pilot, lambda: "preset set to tiny" in side() and "steps/epoch" in side())
        assert "3 x 9.0 MB" in side()
        app.screen.query_one("#f-model-preset", Select).value = "full"
        await wait_for(pilot, lambda: "preset set to tiny" not in side())
        assert "the full preset takes about a minute a step on a CPU" in side()
        assert "340.0 MB" in side()
