"""Without a GPU: the GPU view lists the run's trainer on the CPU with its CPU use and memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tui.app import create_app
from tui.gpu import HostReading, Reading
from tui_helpers import sync, typical_run, wait_for


class NoGpu:
    """A machine without the NVIDIA driver, its CPU busy."""

    def sample(self) -> Reading:
        return Reading(host=HostReading(100.0, 8192.0, 16384.0, (100.0, 100.0)),
                       reason="no driver: libnvidia-ml.so not found")


@sync
async def test_the_gpu_view_lists_the_cpu_trainer_with_its_cpu_and_memory(tmp_path: Path) -> None:
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        fake = typical_run(tmp_path)
        fake.status(pid=trainer.pid, pgid=None)
        app = create_app(tmp_path, tmp_path, gpu_sampler=NoGpu, gpu_refresh_s=0.2)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
            app.call_later(app.open_monitor, fake.run)
            await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
            await pilot.press("g")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "GpuScreen" and app.screen.snapshot)
            table = app.screen.query_one("#gpu-procs")
            await wait_for(pilot, lambda: table.row_count == 1 and str(table.get_row_at(0)[6]) != "n/a")
            row = [str(cell) for cell in table.get_row_at(0)]
            assert row[:2] == ["* voxtop", str(trainer.pid)]
            assert row[3] == "-" and row[4].endswith(" MiB RAM") and row[5] == "CPU"
            assert row[6].endswith("%")  # its CPU use, measured between two samples
            assert "python" in row[7]
            assert "(1 of this run)" in table.border_title and "the trainer on the CPU" in table.border_title
    finally:
        trainer.kill()
        trainer.wait()
        fake.release()
