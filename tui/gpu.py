"""GPU readings for the Monitor: NVML (nvidia-ml-py) when it initialises, else host CPU/RAM.

The fallback carries a one-line reason, so a user on a machine without a driver sees
why there are no GPU figures instead of an empty panel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GpuReading:
    """One GPU at one moment."""

    index: int
    name: str
    util_pct: float | None
    mem_used_mb: float
    mem_total_mb: float
    temp_c: float | None = None
    power_w: float | None = None


@dataclass(frozen=True)
class HostReading:
    """The machine's CPU and memory at one moment."""

    cpu_pct: float
    mem_used_mb: float
    mem_total_mb: float


@dataclass(frozen=True)
class Reading:
    """Everything the GPU panel shows; `reason` says why GPUs are missing."""

    gpus: list[GpuReading] = field(default_factory=list)
    host: HostReading | None = None
    reason: str | None = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Sampler:
    """Reads NVML if it initialises; otherwise psutil host figures plus the reason."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.reason: str | None = None
        self._nvml: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self._nvml = pynvml
            if not self.handles:
                self.reason = "NVML found no GPU"
        except Exception as exc:  # NVMLError, ImportError, OSError: no driver on this host
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.reason = f"no GPU figures (NVML: {message})"

    def sample(self) -> Reading:
        gpus = [self._gpu(i, handle) for i, handle in enumerate(self.handles)]
        return Reading(gpus=[g for g in gpus if g is not None], host=self._host(), reason=self.reason)

    def _gpu(self, index: int, handle: Any) -> GpuReading | None:
        nvml = self._nvml
        try:
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            name = _text(nvml.nvmlDeviceGetName(handle))
        except Exception:
            return None
        util = temp = power = None
        try:
            util = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:
            pass
        try:
            temp = float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
        except Exception:
            pass
        try:
            power = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
        except Exception:
            pass
        return GpuReading(index, name, util, memory.used / 2**20, memory.total / 2**20, temp, power)

    @staticmethod
    def _host() -> HostReading | None:
        try:
            import psutil
        except ImportError:
            return None
        memory = psutil.virtual_memory()
        return HostReading(psutil.cpu_percent(interval=None), (memory.total - memory.available) / 2**20,
                           memory.total / 2**20)


def format_reading(reading: Reading) -> list[str]:
    """Lines for the GPU panel, readable without colour."""
    lines = []
    for gpu in reading.gpus:
        util = f"{gpu.util_pct:3.0f}%" if gpu.util_pct is not None else "  ?%"
        extra = ""
        if gpu.temp_c is not None:
            extra += f" {gpu.temp_c:.0f}C"
        if gpu.power_w is not None:
            extra += f" {gpu.power_w:.0f}W"
        lines.append(f"GPU{gpu.index} {util} mem {gpu.mem_used_mb / 1024:.1f}/"
                     f"{gpu.mem_total_mb / 1024:.1f} GB{extra} {gpu.name}")
    if reading.host is not None:
        host = reading.host
        lines.append(f"CPU {host.cpu_pct:3.0f}% RAM {host.mem_used_mb / 1024:.1f}/"
                     f"{host.mem_total_mb / 1024:.1f} GB")
    if reading.reason:
        lines.append(reading.reason)
    return lines
