"""GPU readings for the Monitor and the GPU view: NVML (nvidia-ml-py) when it starts, else host CPU/RAM.

pynvml and psutil are imported on the first sample, inside the sampling worker, so the TUI
starts fast and `import tui.app` stays free of GPU libraries. Every NVML field is read on
its own: a call that fails or is unsupported (fans on an H100 SXM, power on some boards)
leaves that field None ("n/a" on screen) and the rest still shows. When NVML cannot be
used at all, `Reading.reason` says which of three things is missing (no library, no
driver, no GPU) and the host's CPU and RAM fill the panel instead.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Protocol, Sequence

HISTORY_S = 300.0
"""How far back the history charts reach (seconds)."""
HOLD_S = 10.0
"""How long a chart column without a sample shows the previous one: twice the slowest sampling (5 s)."""

NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
"""NVML's return codes for "no driver" (stable ABI values, so fakes need not define them)."""


class NvmlLibrary(Protocol):
    """The pynvml calls the sampler makes: the `pynvml` module is one; tests pass recorded values.

    Units are NVML's: bytes, milliwatts, MHz, KB/s, percent, degrees C. A call that fails
    raises (pynvml raises NVMLError subclasses, e.g. NVMLError_NotSupported).
    """

    NVML_TEMPERATURE_GPU: int
    NVML_CLOCK_SM: int
    NVML_CLOCK_MEM: int
    NVML_PCIE_UTIL_TX_BYTES: int
    NVML_PCIE_UTIL_RX_BYTES: int

    def nvmlInit(self) -> None: ...
    def nvmlDeviceGetCount(self) -> int: ...
    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any: ...
    def nvmlDeviceGetName(self, handle: Any) -> str | bytes: ...
    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any: ...  # .gpu, .memory (%)
    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any: ...  # .used, .total (bytes)
    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int: ...
    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int: ...
    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> int: ...
    def nvmlDeviceGetFanSpeed(self, handle: Any) -> int: ...
    def nvmlDeviceGetClockInfo(self, handle: Any, clock: int) -> int: ...
    def nvmlDeviceGetPcieThroughput(self, handle: Any, counter: int) -> int: ...
    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> Sequence[Any]: ...  # .pid, .usedGpuMemory
    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: Any) -> Sequence[Any]: ...


@dataclass(frozen=True)
class GpuProcess:
    """A process holding memory on a GPU; `own` marks the watched run's trainer."""

    gpu_index: int
    pid: int
    mem_mb: float | None
    kind: str = "C"
    """C (compute), G (graphics) or C+G."""
    user: str | None = None
    command: str | None = None
    own: bool = False
    cpu_pct: float | None = None
    """The process's CPU use like `top` (100 = one core busy), None until measured twice."""

    @property
    def on_cpu(self) -> bool:
        """A trainer on no GPU: `gpu_index` is -1 and `mem_mb` is its resident RAM."""
        return self.gpu_index < 0


@dataclass(frozen=True)
class GpuReading:
    """One GPU at one moment; None means NVML could not tell ("n/a")."""

    index: int
    name: str | None
    util_pct: float | None
    mem_used_mb: float | None
    mem_total_mb: float | None
    temp_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    fan_pct: float | None = None
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    pcie_rx_mb_s: float | None = None
    pcie_tx_mb_s: float | None = None

    @property
    def mem_pct(self) -> float | None:
        """Memory used as a percentage of total, when both are known."""
        if self.mem_used_mb is None or not self.mem_total_mb:
            return None
        return 100.0 * self.mem_used_mb / self.mem_total_mb


@dataclass(frozen=True)
class HostReading:
    """The machine's CPU and memory at one moment."""

    cpu_pct: float
    mem_used_mb: float
    mem_total_mb: float
    per_cpu_pct: tuple[float, ...] = ()

    @property
    def mem_pct(self) -> float | None:
        """RAM used as a percentage of total."""
        return 100.0 * self.mem_used_mb / self.mem_total_mb if self.mem_total_mb else None


@dataclass(frozen=True)
class Reading:
    """Everything the GPU views show; `reason` says why GPUs are missing (no library/driver/GPU)."""

    gpus: list[GpuReading] = field(default_factory=list)
    host: HostReading | None = None
    reason: str | None = None
    processes: tuple[GpuProcess, ...] = ()


# --- sampling ---------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _message(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _import_pynvml() -> NvmlLibrary:
    import pynvml  # nvidia-ml-py

    return pynvml  # type: ignore[return-value]


def describe_process(pid: int) -> tuple[str | None, str | None]:
    """(user, command line) of a local process, None where it is gone or not ours to read."""
    try:
        import psutil

        process = psutil.Process(pid)
    except Exception:  # ImportError, NoSuchProcess: a pid from another container or already gone
        return None, None
    user = command = None
    try:
        user = process.username()
    except Exception:
        pass
    try:
        command = " ".join(process.cmdline()) or process.name()
    except Exception:
        pass
    return user, command


def read_host() -> HostReading | None:
    """CPU per core and RAM from psutil; None without psutil.

    cpu_percent(interval=None) compares with the previous call, so the first reading is 0.
    """
    try:
        import psutil
    except ImportError:
        return None
    per_cpu = tuple(float(p) for p in psutil.cpu_percent(interval=None, percpu=True))
    memory = psutil.virtual_memory()
    total = sum(per_cpu) / len(per_cpu) if per_cpu else 0.0
    return HostReading(total, (memory.total - memory.available) / 2**20, memory.total / 2**20, per_cpu)


class Sampler:
    """Reads NVML if it starts (handles kept across samples); always the host's CPU/RAM too.

    Nothing happens in the constructor: NVML is imported and initialised on the first
    `sample()`, which the TUI calls from a worker thread.
    """

    def __init__(self, load: Callable[[], NvmlLibrary] | None = None,
                 describe: Callable[[int], tuple[str | None, str | None]] | None = None,
                 host: Callable[[], HostReading | None] | None = None):
        self._load = load or _import_pynvml
        self._describe = describe or describe_process
        self._host = host or read_host
        self._nvml: NvmlLibrary | None = None
        self._started = False
        self.handles: list[Any] = []
        self.reason: str | None = None
        """Why there are no GPU figures: starts with "no library", "no driver" or "no GPU"."""

    def start(self) -> None:
        """Import and initialise NVML once; a failure becomes `reason` and is not retried."""
        if self._started:
            return
        self._started = True
        try:
            nvml = self._load()
        except ImportError:
            self.reason = "no library: nvidia-ml-py is not installed (pip install nvidia-ml-py)"
            return
        try:
            nvml.nvmlInit()
        except Exception as exc:  # NVMLError: LibraryNotFound, DriverNotLoaded, NoPermission, ...
            code = getattr(exc, "value", None)
            if code == NVML_ERROR_LIBRARY_NOT_FOUND:
                self.reason = "no driver: libnvidia-ml.so not found"
            elif code == NVML_ERROR_DRIVER_NOT_LOADED:
                self.reason = "no driver: the NVIDIA driver is not loaded"
            else:
                self.reason = f"no driver: NVML did not start ({_message(exc)})"
            return
        try:
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        except Exception as exc:
            self.reason = f"no GPU: NVML cannot list devices ({_message(exc)})"
            return
        if not handles:
            self.reason = "no GPU: NVML works but sees no device"
            return
        self._nvml, self.handles = nvml, handles

    def sample(self) -> Reading:
        """One reading of every GPU, its processes and the host."""
        self.start()
        gpus = [self._gpu(index, handle) for index, handle in enumerate(self.handles)]
        processes = tuple(p for index, handle in enumerate(self.handles) for p in self._processes(index, handle))
        return Reading(gpus=gpus, host=self._host(), reason=self.reason, processes=processes)

    def _gpu(self, index: int, handle: Any) -> GpuReading:
        nvml = self._nvml
        assert nvml is not None

        def read(call: Callable[[], Any], scale: float = 1.0) -> float | None:
            try:
                value = call()
            except Exception:  # unsupported or failed: this field is n/a, the others go on
                return None
            return None if value is None else float(value) * scale

        rx, tx = nvml.NVML_PCIE_UTIL_RX_BYTES, nvml.NVML_PCIE_UTIL_TX_BYTES
        name: str | None
        try:
            name = _text(nvml.nvmlDeviceGetName(handle))
        except Exception:
            name = None
        used, total = self._memory(handle)
        return GpuReading(
            index, name,
            util_pct=read(lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
            mem_used_mb=used, mem_total_mb=total,
            temp_c=read(lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
            power_w=read(lambda: nvml.nvmlDeviceGetPowerUsage(handle), 1e-3),
            power_limit_w=read(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle), 1e-3),
            fan_pct=read(lambda: nvml.nvmlDeviceGetFanSpeed(handle)),
            sm_clock_mhz=read(lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
            mem_clock_mhz=read(lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM)),
            # NVML counts KB/s; shown as MB/s like `nvidia-smi dmon`.
            pcie_rx_mb_s=read(lambda: nvml.nvmlDeviceGetPcieThroughput(handle, rx), 1e-3),
            pcie_tx_mb_s=read(lambda: nvml.nvmlDeviceGetPcieThroughput(handle, tx), 1e-3),
        )

    def _memory(self, handle: Any) -> tuple[float | None, float | None]:
        """(used, total) MiB as nvidia-smi shows them: the v2 call, whose `used` leaves out the
        driver's reserved memory (about 480 MiB on an H100), else the v1 call (older drivers)."""
        nvml = self._nvml
        version = getattr(nvml, "nvmlMemory_v2", None)
        if version is not None:
            try:
                memory = nvml.nvmlDeviceGetMemoryInfo(handle, version=version)
                return float(memory.used) / 2**20, float(memory.total) / 2**20
            except Exception:  # the driver predates v2 (or the binding does): fall back
                pass
        try:
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            return float(memory.used) / 2**20, float(memory.total) / 2**20
        except Exception:
            return None, None

    def _processes(self, index: int, handle: Any) -> list[GpuProcess]:
        nvml = self._nvml
        assert nvml is not None
        found: dict[int, tuple[str, float | None]] = {}
        for kind, call in (("C", nvml.nvmlDeviceGetComputeRunningProcesses),
                           ("G", nvml.nvmlDeviceGetGraphicsRunningProcesses)):
            try:
                entries = call(handle)
            except Exception:
                continue
            for entry in entries:
                pid = int(entry.pid)
                used = getattr(entry, "usedGpuMemory", None)
                mem_mb = float(used) / 2**20 if used is not None else None
                if pid in found:  # the same process in both lists: one row, C+G
                    old_kind, old_mem = found[pid]
                    found[pid] = ("C+G" if old_kind != kind else kind, mem_mb if old_mem is None else old_mem)
                else:
                    found[pid] = (kind, mem_mb)
        processes = []
        for pid, (kind, mem_mb) in found.items():
            user, command = self._describe(pid)
            processes.append(GpuProcess(index, pid, mem_mb, kind, user, command))
        return processes


# --- the watched run's processes --------------------------------------------------------


@dataclass(frozen=True)
class TrainerProcesses:
    """The run's trainer: the launcher pid, its descendants (torchrun workers) and its process group."""

    pids: frozenset[int]
    pgid: int | None = None

    def owns(self, pid: int) -> bool:
        """Whether `pid` belongs to the trainer (listed, or in its process group)."""
        if pid in self.pids:
            return True
        if self.pgid is None:
            return False
        try:
            return os.getpgid(pid) == self.pgid
        except OSError:
            return False


def trainer_processes(status: Mapping[str, Any] | None) -> TrainerProcesses | None:
    """The trainer's processes from status.json's `pid`/`pgid` plus psutil descendants; None if no pid.

    The caller checks that the run is live and on this host: a finished run's pid may
    since belong to someone else.
    """
    if not status or not status.get("pid"):
        return None
    pid = int(status["pid"])
    pids = {pid}
    try:
        import psutil

        pids.update(child.pid for child in psutil.Process(pid).children(recursive=True))
    except Exception:  # gone already, or psutil missing: the listed pid still counts
        pass
    pgid = status.get("pgid")
    return TrainerProcesses(frozenset(pids), int(pgid) if pgid else None)


def run_trainer(run: Any) -> TrainerProcesses | None:
    """The processes of `run` (a trainer.rundir.RunDir) when its trainer is live on this host."""
    import socket

    from trainer.rundir import ACTIVE_STATES

    run = getattr(run, "run", run)  # a run source: its run folder (a launched command's), if it has one
    if not hasattr(run, "read_status"):
        return None  # another trainer's folder: voxtop knows no process of it
    try:
        status = run.read_status()
        if not status or status.get("host") != socket.gethostname():
            return None
        if run.effective_state(status) not in ACTIVE_STATES:
            return None
    except OSError:  # an unreadable run marks nothing; the Monitor reports the file problem
        return None
    return trainer_processes(status)


class TrainerLookup:
    """A run's trainer processes, cached: looked up again when `key` (what names the trainer: its pid,
    host, state) changes, or after `recheck_s` (a trainer's children come and go).

    Finding a process's children scans every process on the host: too dear to do each second. Owned
    by the one worker that samples the GPU (an exclusive worker group), never by a screen.
    """

    def __init__(self, recheck_s: float = 15.0, clock: Callable[[], float] = time.monotonic):
        self.recheck_s = recheck_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[Any, float, TrainerProcesses | None] | None = None

    def processes(self, run: Any, key: Any) -> TrainerProcesses | None:
        now = self._clock()
        with self._lock:
            if self._cached is None or self._cached[0] != key or now - self._cached[1] > self.recheck_s:
                self._cached = (key, now, run_trainer(run))
            return self._cached[2]


def mark_processes(reading: Reading, trainer: TrainerProcesses | None) -> Reading:
    """`reading` with the trainer's processes marked `own` and listed first, then by memory."""
    processes = [replace(p, own=trainer is not None and trainer.owns(p.pid)) for p in reading.processes]
    processes.sort(key=lambda p: (not p.own, -(p.mem_mb or 0.0), p.gpu_index, p.pid))
    return replace(reading, processes=tuple(processes))


class ProcessMeter:
    """CPU % and RAM of given processes; keeps each psutil.Process, whose CPU % compares with its previous read."""

    def __init__(self) -> None:
        self._processes: dict[int, Any] = {}

    def measure(self, pids: Sequence[int] | frozenset[int]) -> dict[int, tuple[float | None, float | None]]:
        """pid -> (CPU %, resident MiB) of the processes still alive; CPU % is None on a pid's first read."""
        try:
            import psutil
        except ImportError:
            return {}
        found: dict[int, tuple[float | None, float | None]] = {}
        kept: dict[int, Any] = {}
        for pid in pids:
            process = self._processes.get(pid)
            first = process is None
            try:
                if process is None:
                    process = psutil.Process(pid)
                cpu = process.cpu_percent(interval=None)
                rss_mb = process.memory_info().rss / 2**20
            except Exception:  # gone, or not ours to read
                continue
            kept[pid] = process
            found[pid] = (None if first else float(cpu), float(rss_mb))
        self._processes = kept
        return found


def with_cpu_processes(reading: Reading, trainer: TrainerProcesses | None, meter: ProcessMeter) -> Reading:
    """`reading` with each process's CPU %, and the trainer's processes on no GPU listed as CPU rows."""
    gpu_pids = {p.pid for p in reading.processes}
    cpu_pids = sorted(trainer.pids - gpu_pids) if trainer is not None else []
    loads = meter.measure(sorted(gpu_pids | set(cpu_pids)))
    processes = [replace(p, cpu_pct=loads.get(p.pid, (None, None))[0]) for p in reading.processes]
    for pid in cpu_pids:
        if pid not in loads:
            continue
        user, command = describe_process(pid)
        cpu_pct, rss_mb = loads[pid]
        processes.append(GpuProcess(-1, pid, rss_mb, "CPU", user, command, cpu_pct=cpu_pct))
    return replace(reading, processes=tuple(processes))


# --- history ------------------------------------------------------------------------------


class History:
    """Timestamped values per series (e.g. "gpu0.util") over the last `window_s` seconds."""

    def __init__(self, window_s: float = HISTORY_S, max_points: int = 4096):
        self.window_s = window_s
        self.max_points = max_points
        """A bound on memory even if the refresh is set absurdly fast."""
        self._series: dict[str, deque[tuple[float, float]]] = {}

    def add(self, key: str, t: float, value: float | None) -> None:
        """Append one point (an n/a value leaves a gap) and forget points older than the window."""
        series = self._series.setdefault(key, deque(maxlen=self.max_points))
        if value is not None:
            series.append((t, float(value)))
        while series and series[0][0] < t - self.window_s:
            series.popleft()

    def record(self, reading: Reading, t: float) -> None:
        """Add utilisation and memory % of every GPU, and the host's CPU and RAM %."""
        for gpu in reading.gpus:
            self.add(f"gpu{gpu.index}.util", t, gpu.util_pct)
            self.add(f"gpu{gpu.index}.mem", t, gpu.mem_pct)
        if reading.host is not None:
            self.add("cpu", t, reading.host.cpu_pct)
            self.add("ram", t, reading.host.mem_pct)

    def series(self, key: str) -> tuple[tuple[float, float], ...]:
        """A copy of one series, oldest first."""
        return tuple(self._series.get(key, ()))

    def snapshot(self) -> dict[str, tuple[tuple[float, float], ...]]:
        """Copies of every series, safe to hand to the UI thread."""
        return {key: tuple(points) for key, points in self._series.items()}


def bin_series(points: Sequence[tuple[float, float]], now: float, window_s: float,
               columns: int, hold_s: float = HOLD_S) -> list[float | None]:
    """`columns` buckets covering the last `window_s` seconds, newest right; each the max of its points.

    A bucket narrower than the sampling interval (5 min over 70 columns is 4.3 s; the host is
    sampled every 5 s) may get no point: it holds the previous point's value for up to `hold_s`,
    so a steady load draws as a solid bar. A longer gap (nothing was sampling) stays empty.
    """
    buckets: list[float | None] = [None] * max(columns, 0)
    if columns <= 0 or window_s <= 0:
        return buckets
    bucket_s = window_s / columns
    placed: list[tuple[int, float, float]] = []
    for t, value in points:
        age = max(0.0, now - t)
        if age >= window_s:
            continue
        column = columns - 1 - min(columns - 1, int(age / bucket_s))
        current = buckets[column]
        buckets[column] = value if current is None else max(current, value)
        placed.append((column, t, value))
    held = list(buckets)
    for column, t, value in placed:
        following = column + 1
        while (following < columns and buckets[following] is None
               and now - window_s + following * bucket_s - t < hold_s):
            current = held[following]
            held[following] = value if current is None else max(current, value)
            following += 1
    return held


# --- the app's feed -----------------------------------------------------------------------


@dataclass(frozen=True)
class GpuSnapshot:
    """What a GPU view draws: the latest reading (processes marked), the history and when."""

    reading: Reading
    history: dict[str, tuple[tuple[float, float], ...]]
    at: float


class GpuFeed:
    """One sampler and one history for the whole app, so every GPU view shows the same minutes.

    `sample()` is called from worker threads; a lock keeps two views from sampling at once.
    """

    def __init__(self, sampler_factory: Callable[[], Any] | None = None, window_s: float = HISTORY_S,
                 clock: Callable[[], float] = time.time):
        self._factory = sampler_factory or Sampler
        self._sampler: Any = None
        self._clock = clock
        self._lock = threading.Lock()
        self._meter = ProcessMeter()
        self.history = History(window_s)

    def sample(self, trainer: TrainerProcesses | None = None) -> GpuSnapshot:
        """Read once, add to the history, mark `trainer`'s processes (listed with their CPU and RAM
        when they hold no GPU: a trainer on the CPU)."""
        with self._lock:
            try:
                if self._sampler is None:
                    self._sampler = self._factory()
                reading = self._sampler.sample()
            except Exception as exc:  # a broken sampler must show as a line, not end the app
                reading = Reading(reason=f"GPU sampling failed: {_message(exc)}")
            now = self._clock()
            self.history.record(reading, now)
            history = self.history.snapshot()
            reading = with_cpu_processes(reading, trainer, self._meter)
        return GpuSnapshot(mark_processes(reading, trainer), history, now)
