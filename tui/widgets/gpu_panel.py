"""GPU figures as text: the Monitor's compact panel, and the lines the full GPU view draws.

Everything is plain text that reads without colour: "n/a" for a field NVML would not
give, block characters for the history charts (scaled 0-100 %, never to the data's own
range, so a flat 3 % line does not look like a full load).
"""

from __future__ import annotations

from typing import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from tui.gpu import GpuProcess, GpuReading, GpuSnapshot, HostReading, Reading, bin_series

NA = "n/a"
BLOCKS = " ▁▂▃▄▅▆▇█"
SPARK_WINDOW_S = 60.0
"""The Monitor panel's sparklines cover the last minute; the full view the whole history."""


# --- fields -------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 0) -> str:
    return NA if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return NA if value is None else f"{value:.0f}%"


def gpu_fields(gpu: GpuReading) -> dict[str, str]:
    """Every figure of one GPU as shown in the full view, "n/a" where NVML could not tell."""
    mem = NA
    if gpu.mem_used_mb is not None or gpu.mem_total_mb is not None:
        mem = f"{_num(gpu.mem_used_mb)}/{_num(gpu.mem_total_mb)} MiB"
        if gpu.mem_pct is not None:
            mem += f" ({gpu.mem_pct:.0f}%)"
    power = NA
    if gpu.power_w is not None or gpu.power_limit_w is not None:
        power = f"{_num(gpu.power_w)}/{_num(gpu.power_limit_w)} W"
    clocks = NA
    if gpu.sm_clock_mhz is not None or gpu.mem_clock_mhz is not None:
        clocks = f"sm {_num(gpu.sm_clock_mhz)} / mem {_num(gpu.mem_clock_mhz)} MHz"
    pcie = NA
    if gpu.pcie_rx_mb_s is not None or gpu.pcie_tx_mb_s is not None:
        pcie = f"rx {_num(gpu.pcie_rx_mb_s)} / tx {_num(gpu.pcie_tx_mb_s)} MB/s"
    return {
        "name": gpu.name if gpu.name is not None else NA,
        "util": _pct(gpu.util_pct),
        "mem": mem,
        "temp": NA if gpu.temp_c is None else f"{gpu.temp_c:.0f}°C",
        "fan": _pct(gpu.fan_pct),
        "power": power,
        "clocks": clocks,
        "pcie": pcie,
    }


def host_fields(host: HostReading) -> dict[str, str]:
    """The host's CPU (total and core count) and RAM."""
    ram = f"{host.mem_used_mb / 1024:.1f}/{host.mem_total_mb / 1024:.1f} GiB"
    if host.mem_pct is not None:
        ram += f" ({host.mem_pct:.0f}%)"
    return {"cpu": _pct(host.cpu_pct), "ram": ram, "cores": str(len(host.per_cpu_pct) or NA)}


def _gib(mb: float | None) -> str:
    return NA if mb is None else f"{mb / 1024:.1f}"


def process_row(process: GpuProcess, command_width: int = 60) -> tuple[str, ...]:
    """Table cells of one process: GPU, GPU memory, kind, CPU %; a trainer on no GPU with its RAM;
    the run's own trainer marked "* voxtop"."""
    command = process.command if process.command is not None else NA
    if cell_len(command) > command_width:
        command = command[:max(command_width - 1, 0)] + "…"
    mem = NA if process.mem_mb is None else f"{process.mem_mb:.0f} MiB" + (" RAM" if process.on_cpu else "")
    return ("* voxtop" if process.own else "", str(process.pid), process.user or NA,
            "-" if process.on_cpu else str(process.gpu_index), mem, process.kind, _pct(process.cpu_pct), command)


# --- charts -------------------------------------------------------------------------------


def sparkline(values: Sequence[float | None], top: float = 100.0) -> str:
    """One character per value, 0..`top` in eighths; at least ▁ for a sample, so idle differs from no data."""
    chars = []
    for value in values:
        if value is None:
            chars.append(" ")
            continue
        level = round(min(max(value / top, 0.0), 1.0) * 8)
        chars.append(BLOCKS[max(level, 1)])
    return "".join(chars)


def bar_chart(values: Sequence[float | None], rows: int, top: float = 100.0) -> list[str]:
    """`rows` lines of block bars, one column per value, top row first, with a 0/100 gutter."""
    lines = []
    for row in range(rows - 1, -1, -1):
        cells = []
        for value in values:
            eighths = 0 if value is None else round(min(max(value / top, 0.0), 1.0) * rows * 8)
            if value is not None and value > 0 and row == 0:
                eighths = max(eighths, 1)
            cells.append(BLOCKS[min(max(eighths - row * 8, 0), 8)])
        gutter = f"{top:3.0f}┤" if row == rows - 1 else ("  0┤" if row == 0 else "   │")
        lines.append(gutter + "".join(cells))
    return lines


def _span(window_s: float) -> str:
    return f"{window_s / 60:g} min" if window_s >= 60 else f"{window_s:g} s"


def _charts(snapshot: GpuSnapshot, window_s: float, width: int, rows: int,
            series: Sequence[tuple[str, str]]) -> list[str]:
    """Two history charts side by side (stacked when narrow), each with a title line."""
    side_by_side = width >= 44
    chart_width = (width - 2) // 2 if side_by_side else width
    blocks = []
    for key, title in series:
        points = snapshot.history.get(key, ())
        now = f" · now {points[-1][1]:.0f}%" if points else ""
        values = bin_series(points, snapshot.at, window_s, max(chart_width - 4, 1))
        blocks.append([f"{title} · last {_span(window_s)}{now}"[:chart_width]] + bar_chart(values, rows))
    if not side_by_side:
        return [line for block in blocks for line in block]
    left, right = blocks
    return [f"{a:<{chart_width}}  {b}".rstrip() for a, b in zip(left, right)]


def _pack(fields: Sequence[tuple[str, str]], width: int, indent: str = "  ") -> list[str]:
    """`label value` pairs on as few lines as fit `width`, three spaces apart."""
    lines: list[str] = []
    line = ""
    for label, value in fields:
        item = f"{label} {value}"
        if line and cell_len(line) + 3 + cell_len(item) > width:
            lines.append(line)
            line = ""
        line = f"{line}   {item}" if line else indent + item
    if line:
        lines.append(line)
    return lines


def card_lines(snapshot: GpuSnapshot, gpu: GpuReading, width: int, chart_rows: int, window_s: float) -> list[str]:
    """The full view of one GPU: name, every field, utilisation and memory history."""
    fields = gpu_fields(gpu)
    lines = [f"GPU{gpu.index} · {fields['name']}"]
    lines += _pack([(key, fields[key]) for key in ("util", "mem", "temp", "fan", "power", "clocks", "pcie")],
                   width)
    lines += _charts(snapshot, window_s, width, chart_rows,
                     [(f"gpu{gpu.index}.util", "util %"), (f"gpu{gpu.index}.mem", "mem %")])
    return lines


def host_lines(snapshot: GpuSnapshot, width: int, chart_rows: int, window_s: float) -> list[str]:
    """The fallback: why there are no GPU figures (one line), then the host's CPU per core and RAM."""
    reading = snapshot.reading
    reason = reading.reason or "no GPU figures"
    if reading.host is None:
        return [reason, "  host figures need psutil"]
    lines = [f"{reason} · the host's CPU and RAM instead"]
    fields = host_fields(reading.host)
    lines += _pack([("cpu", fields["cpu"]), ("ram", fields["ram"]), ("cores", fields["cores"])], width)
    cores = sparkline(reading.host.per_cpu_pct)
    per_line = max(width - 11, 8)
    for start in range(0, len(cores), per_line):
        lines.append(("  per core " if start == 0 else " " * 11) + cores[start:start + per_line])
    lines += _charts(snapshot, window_s, width, chart_rows, [("cpu", "cpu %"), ("ram", "ram %")])
    return lines


# --- the Monitor's panel ------------------------------------------------------------------


def _fit(parts: Sequence[str], width: int) -> str:
    """Join `parts` with spaces, dropping trailing ones that would overflow `width` (the first stays)."""
    line = parts[0]
    for part in parts[1:]:
        if cell_len(line) + 1 + cell_len(part) > width:
            break
        line += " " + part
    return line


def _with_spark(line: str, snapshot: GpuSnapshot, key: str, width: int) -> str:
    room = width - cell_len(line) - 1
    if room < 4 or key not in snapshot.history:
        return line
    return line + " " + sparkline(bin_series(snapshot.history[key], snapshot.at, SPARK_WINDOW_S, room))


def compact_lines(snapshot: GpuSnapshot, width: int) -> list[str]:
    """The Monitor's summary: a line per GPU (figures, then last-minute utilisation), the run's
    GPU memory, the host; without GPUs, what is missing with the host's figures, then why."""
    reading: Reading = snapshot.reading
    lines = []
    if reading.reason and not reading.gpus:
        # The Monitor may show one line: the missing thing ("no driver") and the host's figures.
        if reading.host is None:
            return [reading.reason]
        host = reading.host
        head = f"{reading.reason.split(':')[0]} · CPU {host.cpu_pct:3.0f}%"
        ram = f"RAM {_gib(host.mem_used_mb)}/{_gib(host.mem_total_mb)}G"
        if cell_len(head) + 1 + cell_len(ram) > width:
            ram = f"RAM {_pct(host.mem_pct)}"
        line = _fit([head, ram], width)
        return [_with_spark(line, snapshot, "cpu", width), reading.reason]
    if len(reading.gpus) > 1:  # the Monitor may show one line: make it cover every GPU
        utils = [f"{gpu_fields(gpu)['util']:>4}" for gpu in reading.gpus]
        lines.append(_fit([f"{len(reading.gpus)} GPUs"] + utils, width))
    for gpu in reading.gpus:
        fields = gpu_fields(gpu)
        power = NA if gpu.power_w is None else f"{gpu.power_w:.0f}W"
        line = _fit([f"GPU{gpu.index} {fields['util']:>4}", f"{_gib(gpu.mem_used_mb)}/{_gib(gpu.mem_total_mb)}G",
                     fields["temp"], power], width)
        lines.append(_with_spark(line, snapshot, f"gpu{gpu.index}.util", width))
    own = [p for p in reading.processes if p.own and not p.on_cpu]
    if own:
        own_mb = sum(p.mem_mb or 0.0 for p in own)
        lines.append(f"this run: {_gib(own_mb)}G in {len(own)} process{'es' if len(own) > 1 else ''}")
    if reading.host is not None:
        host = reading.host
        lines.append(_fit([f"CPU {host.cpu_pct:3.0f}%", f"RAM {_gib(host.mem_used_mb)}/{_gib(host.mem_total_mb)}G"],
                          width))
    return lines


class GpuPanel(Widget):
    """The Monitor's GPU summary; redrawn to its width, each line cut rather than wrapped."""

    DEFAULT_CSS = """
    GpuPanel { height: auto; }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.snapshot: GpuSnapshot | None = None
        """The latest sample shown; None until the first one lands."""

    def show(self, snapshot: GpuSnapshot | Reading) -> None:
        """Draw a new sample (a bare Reading is shown without history)."""
        if isinstance(snapshot, Reading):
            snapshot = GpuSnapshot(snapshot, {}, 0.0)
        self.snapshot = snapshot
        self.refresh(layout=True)

    def lines(self, width: int | None = None) -> list[str]:
        """What the panel shows at `width` (default: its current width)."""
        if self.snapshot is None:
            return ["GPU: sampling..."]
        return compact_lines(self.snapshot, width or self.content_size.width or 32) or ["no readings"]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.lines(width))

    def render(self) -> Text:
        return Text("\n".join(self.lines()), no_wrap=True, overflow="ellipsis")
