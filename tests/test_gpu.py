"""GPU panel and view without a GPU: recorded NVML values, the three fallbacks, marking, history, threads.

`RecordedNvml` plays back what pynvml returned on an H100 SXM during a training run (fan
speed is unsupported there: NVML raises NotSupported), in NVML's own units, so the unit
conversions and the per-field "n/a" are tested on the same path real hardware takes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tui.app import create_app
from tui.gpu import (GpuFeed, GpuProcess, GpuSnapshot, History, HostReading, Reading, Sampler,
                     TrainerProcesses, bin_series, mark_processes, trainer_processes)
from tui.widgets.gpu_panel import bar_chart, card_lines, compact_lines, gpu_fields, process_row, sparkline
from tui_helpers import FakeRun, settle, sync, typical_run, wait_for

MIB = 2**20
TRAINER_PID = 4242
OTHER_PID = 5151


class NVMLError(Exception):
    """What pynvml raises; `value` is NVML's return code."""

    def __init__(self, value: int, text: str = ""):
        super().__init__(text or f"NVML error {value}")
        self.value = value


NOT_SUPPORTED = 3


class RecordedNvml:
    """pynvml's calls answered from one recorded H100 sample (NVML units: bytes, mW, MHz, KB/s)."""

    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_PCIE_UTIL_TX_BYTES = 0
    NVML_PCIE_UTIL_RX_BYTES = 1
    nvmlMemory_v2 = 0x02000028

    def __init__(self, devices: int = 1, init_error: Exception | None = None, broken: tuple[str, ...] = ()):
        self.devices = devices
        self.init_error = init_error
        self.broken = broken
        """Names of calls that fail on this machine (beyond the fan, which the H100 lacks)."""
        self.init_calls = 0
        self.handle_calls = 0
        self.threads: set[str] = set()

    def _call(self, name: str) -> None:
        self.threads.add(threading.current_thread().name)
        if name in self.broken:
            raise NVMLError(999, "Unknown Error")

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise self.init_error

    def nvmlDeviceGetCount(self) -> int:
        return self.devices

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        self.handle_calls += 1
        return ("handle", index)

    def nvmlDeviceGetName(self, handle: Any) -> bytes:
        self._call("name")
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:
        self._call("util")
        return SimpleNamespace(gpu=97, memory=41)

    def nvmlDeviceGetMemoryInfo(self, handle: Any, version: int | None = None) -> Any:
        # As the H100's driver answers: v1's `used` includes the 483 MiB the driver reserves,
        # v2 (what nvidia-smi shows) reports them apart.
        self._call("memory")
        if version is not None:
            assert version == self.nvmlMemory_v2
            self._call("memory_v2")
            return SimpleNamespace(used=61234 * MIB, reserved=483 * MIB, total=81559 * MIB,
                                   free=(81559 - 61234 - 483) * MIB)
        return SimpleNamespace(used=(61234 + 483) * MIB, total=81559 * MIB, free=(81559 - 61234 - 483) * MIB)

    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int:
        self._call("temp")
        assert sensor == self.NVML_TEMPERATURE_GPU
        return 64

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        self._call("power")
        return 612_345  # mW

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> int:
        self._call("power_limit")
        return 700_000

    def nvmlDeviceGetFanSpeed(self, handle: Any) -> int:
        raise NVMLError(NOT_SUPPORTED, "Not Supported")

    def nvmlDeviceGetClockInfo(self, handle: Any, clock: int) -> int:
        self._call("clocks")
        return {self.NVML_CLOCK_SM: 1980, self.NVML_CLOCK_MEM: 2619}[clock]

    def nvmlDeviceGetPcieThroughput(self, handle: Any, counter: int) -> int:
        self._call("pcie")
        return {self.NVML_PCIE_UTIL_RX_BYTES: 1_234_000, self.NVML_PCIE_UTIL_TX_BYTES: 56_000}[counter]  # KB/s

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[Any]:
        self._call("compute")
        return [SimpleNamespace(pid=TRAINER_PID, usedGpuMemory=60_000 * MIB, gpuInstanceId=0, computeInstanceId=0),
                SimpleNamespace(pid=OTHER_PID, usedGpuMemory=700 * MIB, gpuInstanceId=0, computeInstanceId=0)]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: Any) -> list[Any]:
        self._call("graphics")
        return [SimpleNamespace(pid=OTHER_PID, usedGpuMemory=None, gpuInstanceId=0, computeInstanceId=0)]


PROCESS_INFO = {TRAINER_PID: ("alice", "/usr/bin/python -m trainer runs/demo_20231114_221320"),
                OTHER_PID: ("bob", "python notebook_kernel.py")}
HOST = HostReading(12.5, 4096.0, 16384.0, (10.0, 15.0, 0.0, 25.0))


def recorded_sampler(nvml: RecordedNvml | None = None) -> Sampler:
    nvml = nvml or RecordedNvml()
    return Sampler(load=lambda: nvml, describe=lambda pid: PROCESS_INFO.get(pid, (None, None)), host=lambda: HOST)


def snapshot_of(reading: Reading, history: dict | None = None, at: float = 1000.0) -> GpuSnapshot:
    return GpuSnapshot(reading, history or {}, at)


# --- the recorded sample, field by field ---------------------------------------------------


def test_recorded_h100_reads_every_field_in_display_units() -> None:
    reading = recorded_sampler().sample()
    assert reading.reason is None
    gpu = reading.gpus[0]
    assert (gpu.index, gpu.name, gpu.util_pct) == (0, "NVIDIA H100 80GB HBM3", 97.0)
    assert (gpu.mem_used_mb, gpu.mem_total_mb, gpu.temp_c) == (61234.0, 81559.0, 64.0)
    assert gpu.power_w == pytest.approx(612.345) and gpu.power_limit_w == pytest.approx(700.0)
    assert gpu.fan_pct is None  # NotSupported on this board
    assert (gpu.sm_clock_mhz, gpu.mem_clock_mhz) == (1980.0, 2619.0)
    assert gpu.pcie_rx_mb_s == pytest.approx(1234.0) and gpu.pcie_tx_mb_s == pytest.approx(56.0)
    assert reading.host == HOST


def test_memory_used_is_nvidia_smis_figure_and_older_drivers_fall_back() -> None:
    """v2 leaves the driver's reserved memory out, as nvidia-smi does (checked on an H100: the v1
    figure was 480 MiB above nvidia-smi's); a driver without v2 gives v1's figure instead."""
    assert recorded_sampler().sample().gpus[0].mem_used_mb == 61234.0
    old = Sampler(load=lambda: RecordedNvml(broken=("memory_v2",)), describe=lambda pid: (None, None),
                  host=lambda: None)
    assert old.sample().gpus[0].mem_used_mb == 61234.0 + 483


def test_every_field_is_formatted_from_the_recorded_sample() -> None:
    fields = gpu_fields(recorded_sampler().sample().gpus[0])
    assert fields == {
        "name": "NVIDIA H100 80GB HBM3",
        "util": "97%",
        "mem": "61234/81559 MiB (75%)",
        "temp": "64°C",
        "fan": "n/a",
        "power": "612/700 W",
        "clocks": "sm 1980 / mem 2619 MHz",
        "pcie": "rx 1234 / tx 56 MB/s",
    }


def test_each_failing_call_is_na_and_the_rest_still_shows() -> None:
    calls = ("name", "util", "memory", "temp", "power", "power_limit", "clocks", "pcie")
    for call in calls:
        fields = gpu_fields(recorded_sampler(RecordedNvml(broken=(call,))).sample().gpus[0])
        expected_na = {"name": ["name"], "util": ["util"], "memory": ["mem"], "temp": ["temp"],
                       "power": [], "power_limit": [], "clocks": ["clocks"], "pcie": ["pcie"]}[call]
        assert [key for key, value in fields.items() if value == "n/a"] == sorted(expected_na + ["fan"],
                                                                                 key=list(fields).index), call
    half = gpu_fields(recorded_sampler(RecordedNvml(broken=("power_limit",))).sample().gpus[0])
    assert half["power"] == "612/n/a W"
    dead = recorded_sampler(RecordedNvml(broken=calls + ("compute", "graphics"))).sample()
    assert set(gpu_fields(dead.gpus[0]).values()) == {"n/a"}
    assert dead.processes == ()
    assert compact_lines(snapshot_of(dead), 40)[0].startswith("GPU0  n/a n/a/n/aG n/a n/a")


def test_processes_from_compute_and_graphics_lists_with_user_and_command() -> None:
    reading = recorded_sampler().sample()
    by_pid = {p.pid: p for p in reading.processes}
    assert by_pid[TRAINER_PID] == GpuProcess(0, TRAINER_PID, 60000.0, "C", "alice", PROCESS_INFO[TRAINER_PID][1])
    assert by_pid[OTHER_PID].kind == "C+G" and by_pid[OTHER_PID].mem_mb == 700.0


def test_nvml_is_initialised_once_and_handles_are_kept() -> None:
    nvml = RecordedNvml(devices=2)
    sampler = recorded_sampler(nvml)
    for _ in range(3):
        reading = sampler.sample()
    assert [g.index for g in reading.gpus] == [0, 1]
    assert nvml.init_calls == 1 and nvml.handle_calls == 2


# --- no library, no driver, no GPU ---------------------------------------------------------


def no_library() -> Any:
    raise ImportError("No module named 'pynvml'")


@pytest.mark.parametrize(("load", "reason"), [
    (no_library, "no library: "),
    (lambda: RecordedNvml(init_error=NVMLError(12, "NVML Shared Library Not Found")), "no driver: "),
    (lambda: RecordedNvml(init_error=NVMLError(9, "Driver Not Loaded")), "no driver: "),
    (lambda: RecordedNvml(devices=0), "no GPU: "),
])
def test_fallback_says_which_thing_is_missing_and_shows_the_host(load: Any, reason: str) -> None:
    reading = Sampler(load=load, host=lambda: HOST).sample()
    assert reading.gpus == [] and reading.processes == ()
    assert reading.reason is not None and reading.reason.startswith(reason)
    assert "\n" not in reading.reason
    lines = compact_lines(snapshot_of(reading), 60)
    assert lines[0] == f"{reason[:-2]} · CPU  12% RAM 4.0/16.0G"  # what is missing, and the host instead
    assert lines[1] == reading.reason
    assert compact_lines(snapshot_of(reading), 30)[0] == f"{reason[:-2]} · CPU  12% RAM 25%"  # narrow: RAM as %


def test_missing_pynvml_module_is_no_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    reading = Sampler(host=lambda: HOST).sample()
    assert reading.reason is not None and reading.reason.startswith("no library: nvidia-ml-py")


def test_the_real_library_on_this_machine_falls_back_without_raising() -> None:
    reading = Sampler().sample()
    if reading.gpus:
        pytest.skip("this machine has a GPU")
    assert reading.reason is not None and reading.reason.split(":")[0] in ("no library", "no driver", "no GPU")
    assert reading.host is not None and reading.host.mem_total_mb > 0 and reading.host.per_cpu_pct


# --- marking the run's own processes ---------------------------------------------------------


def test_trainer_processes_are_marked_and_listed_first() -> None:
    reading = recorded_sampler().sample()
    marked = mark_processes(reading, TrainerProcesses(frozenset({TRAINER_PID})))
    assert [(p.pid, p.own) for p in marked.processes] == [(TRAINER_PID, True), (OTHER_PID, False)]
    rows = [process_row(p) for p in marked.processes]
    assert rows[0][:6] == ("* voxtop", str(TRAINER_PID), "alice", "0", "60000 MiB", "C")
    assert rows[1][:6] == ("", str(OTHER_PID), "bob", "0", "700 MiB", "C+G")
    unmarked = mark_processes(reading, None)
    assert not any(p.own for p in unmarked.processes)
    assert process_row(GpuProcess(1, 7, None))[2:] == ("n/a", "1", "n/a", "C", "n/a", "n/a")


def test_descendants_and_process_group_of_the_launcher_count_as_the_trainer() -> None:
    # A launcher (like torchrun) in its own session with a worker child and a grandchild.
    launcher = subprocess.Popen([sys.executable, "-c", "import subprocess,sys; subprocess.run(['sleep', '30'])"],
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        import psutil

        while not psutil.Process(launcher.pid).children(recursive=True) and time.monotonic() < deadline:
            time.sleep(0.05)
        worker = psutil.Process(launcher.pid).children(recursive=True)[0].pid
        trainer = trainer_processes({"pid": launcher.pid, "pgid": launcher.pid})
        assert trainer is not None
        assert trainer.owns(launcher.pid) and trainer.owns(worker)
        assert not trainer.owns(os.getpid())
        # A process that left the tree but stayed in the group still counts.
        assert TrainerProcesses(frozenset(), launcher.pid).owns(worker)
    finally:
        os.killpg(launcher.pid, 9)
        launcher.wait()
    assert trainer_processes({"pid": None}) is None and trainer_processes(None) is None


# --- history -------------------------------------------------------------------------------


def test_history_keeps_only_the_time_window() -> None:
    history = History(window_s=60.0)
    for second in range(0, 200):
        history.add("gpu0.util", float(second), float(second % 100))
    points = history.series("gpu0.util")
    assert points[0][0] == 139.0 and points[-1][0] == 199.0 and len(points) == 61
    history.add("gpu0.util", 200.0, None)  # n/a: a gap, the window still moves
    assert history.series("gpu0.util")[0][0] == 140.0


def test_history_length_is_bounded_even_at_absurd_rates() -> None:
    history = History(window_s=300.0, max_points=100)
    for i in range(1000):
        history.add("cpu", i * 0.001, 50.0)
    assert len(history.series("cpu")) == 100


def test_feed_records_gpu_and_host_series_and_bins_them_by_time() -> None:
    now = [1000.0]
    feed = GpuFeed(recorded_sampler, window_s=300.0, clock=lambda: now[0])
    for _ in range(5):
        snapshot = feed.sample()
        now[0] += 1.0
    assert set(snapshot.history) == {"gpu0.util", "gpu0.mem", "cpu", "ram"}
    assert [v for _, v in snapshot.history["gpu0.util"]] == [97.0] * 5
    assert snapshot.history["gpu0.mem"][-1][1] == pytest.approx(100 * 61234 / 81559)
    assert bin_series(snapshot.history["gpu0.util"], 1004.0, 10.0, 5) == [None, None, 97.0, 97.0, 97.0]
    assert bin_series([(0.0, 50.0)], 1004.0, 10.0, 5) == [None] * 5  # older than the window


def test_feed_turns_a_broken_sampler_into_a_line() -> None:
    class Broken:
        def sample(self) -> Reading:
            raise RuntimeError("boom")

    snapshot = GpuFeed(Broken).sample()
    assert snapshot.reading.reason == "GPU sampling failed: boom"


# --- drawing -------------------------------------------------------------------------------


def test_sparkline_and_bars_scale_to_percent_not_to_the_data() -> None:
    assert sparkline([0.0, 3.0, 50.0, 100.0, None]) == "▁▁▄█ "  # idle is ▁, no data a gap
    chart = bar_chart([100.0, 50.0, 10.0, None], rows=2)
    assert chart == ["100┤█   ", "  0┤██▂ "]


def test_card_shows_every_field_and_both_charts_at_80_columns() -> None:
    feed = GpuFeed(recorded_sampler, clock=iter(range(1000, 1100)).__next__)
    for _ in range(3):
        snapshot = feed.sample()
    lines = card_lines(snapshot, snapshot.reading.gpus[0], 78, 4, 300.0)
    text = "\n".join(lines)
    assert lines[0] == "GPU0 · NVIDIA H100 80GB HBM3"
    for figure in ("util 97%", "mem 61234/81559 MiB (75%)", "temp 64°C", "fan n/a", "power 612/700 W",
                   "clocks sm 1980 / mem 2619 MHz", "pcie rx 1234 / tx 56 MB/s"):
        assert figure in text
    assert "util % · last 5 min · now 97%" in text and "mem % · last 5 min · now 75%" in text
    assert all(len(line) <= 78 for line in lines)
    assert lines[-1].endswith("█")


def test_compact_panel_fits_the_monitor_side_column() -> None:
    feed = GpuFeed(recorded_sampler)
    snapshot = mark_processes(feed.sample().reading, TrainerProcesses(frozenset({TRAINER_PID})))
    lines = compact_lines(snapshot_of(snapshot, feed.history.snapshot(), feed.history.series("cpu")[-1][0]), 32)
    assert lines[0].startswith("GPU0  97% 59.8/79.6G 64°C 612W")
    assert lines[1] == "this run: 58.6G in 1 process"
    assert all(len(line) <= 32 for line in lines)


# --- the app: sampling in a worker, the panel and the full view --------------------------------


@sync
async def test_gpu_view_samples_off_the_ui_thread_and_marks_the_runs_trainer(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    fake.status(pid=TRAINER_PID, pgid=None)
    nvml = RecordedNvml()
    app = create_app(tmp_path, tmp_path, gpu_sampler=lambda: recorded_sampler(nvml), gpu_refresh_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        app.call_later(app.open_monitor, fake.run)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
        await settle(pilot)
        panel = app.screen.query_one("#gpu")
        await wait_for(pilot, lambda: "GPU0  97%" in str(panel.render()))
        assert "this run: 58.6G" in str(panel.render())
        await pilot.press("g")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "GpuScreen" and app.screen.snapshot)
        screen = app.screen
        await settle(pilot)
        assert nvml.threads and threading.main_thread().name not in nvml.threads
        table = screen.query_one("#gpu-procs")
        assert table.row_count == 2
        assert [str(c) for c in table.get_row_at(0)[:2]] == ["* voxtop", str(TRAINER_PID)]
        assert str(table.get_row_at(1)[0]) == ""
        assert "processes: 2 (1 of this run)" in table.border_title
        cards = str(screen.query_one("#gpu-cards").render())
        assert "power 612/700 W" in cards and "fan n/a" in cards
        samples = len(app.gpu_feed.history.series("gpu0.util"))
        await wait_for(pilot, lambda: len(app.gpu_feed.history.series("gpu0.util")) >= samples + 2)
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
    fake.release()


@sync
async def test_gpu_view_from_the_runs_screen_marks_nothing_and_falls_back(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    app = create_app(tmp_path, tmp_path)  # the real sampler: no library here, so the host fallback
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        await pilot.press("G")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "GpuScreen" and app.screen.snapshot)
        screen = app.screen
        assert screen.run is None and "nothing marked" in str(screen.query_one("#gpu-title").render())
        cards = str(screen.query_one("#gpu-cards").render()).splitlines()
        assert cards[0].startswith("no library: ")
        assert cards[1].lstrip().startswith("cpu ") and "ram " in cards[1] and "per core" in cards[2]
        assert "processes: none" in screen.query_one("#gpu-procs").border_title
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")


@sync
async def test_finished_runs_pids_are_not_marked(tmp_path: Path) -> None:
    fake = FakeRun(tmp_path, "old_20231114_221320", state="finished", hold_lock=False)
    fake.status(pid=TRAINER_PID)
    app = create_app(tmp_path, tmp_path, gpu_sampler=recorded_sampler)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        app.call_later(app.open_gpu, fake.run)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "GpuScreen" and app.screen.snapshot)
        assert not any(p.own for p in app.screen.snapshot.reading.processes)


@sync
async def test_monitor_panel_is_fed_by_a_message_from_the_worker(tmp_path: Path) -> None:
    from tui.messages import GpuSampled

    fake = typical_run(tmp_path)
    nvml = RecordedNvml()
    posted: list[GpuSampled] = []
    app = create_app(tmp_path, tmp_path, gpu_sampler=lambda: recorded_sampler(nvml), gpu_refresh_s=3600)
    async with app.run_test(size=(80, 24), message_hook=lambda m: posted.append(m)
                            if isinstance(m, GpuSampled) else None) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        assert posted == [] and nvml.init_calls == 0  # nothing GPU-related before a GPU view opens
        app.call_later(app.open_monitor, fake.run)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen")
        await settle(pilot)  # app.workers.wait_for_complete(), then the messages land
        samples = {id(message): message for message in posted}  # the hook sees it again as it bubbles up
        assert len(samples) == 1 and posted[0].snapshot.reading.gpus[0].util_pct == 97.0
        assert nvml.init_calls == 1 and "MainThread" not in nvml.threads
        assert str(app.screen.query_one("#gpu").render()).startswith("GPU0  97% 59.8/79.6G")
    fake.release()


def test_gpu_refresh_option() -> None:
    from tui.cli import build_parser

    assert build_parser().parse_args([]).gpu_refresh == 1.0
    assert build_parser().parse_args(["--gpu-refresh", "0.5"]).gpu_refresh == 0.5
    for bad in ("0", "soon"):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args(["--gpu-refresh", bad])
        assert exit_info.value.code == 2
