"""GPU view (nvtop-style): every GPU with all its figures and history charts, and every GPU process.

Opened from the Monitor (`g`: the run's trainer processes are marked) or from anywhere
with `G` (no run, nothing marked). Sampling runs in a worker thread at the app's GPU
refresh; the screen only draws what the worker posts.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Static

from tui.gpu import GpuSnapshot, run_trainer
from tui.messages import GpuSampled
from tui.widgets.gpu_panel import card_lines, host_lines, process_row
from tui.widgets.tables import fill_table
from tui.workers import ReportsWorkerFailures

PROCESS_COLUMNS = (("run", "mark"), ("pid", "pid"), ("user", "user"), ("gpu", "gpu"), ("mem", "mem"),
                   ("type", "type"), ("cpu", "cpu"), ("command", "command"))


class GpuCards(Widget):
    """Every GPU's figures and charts as text (or the host fallback), drawn to the widget's width."""

    DEFAULT_CSS = """
    GpuCards { height: auto; }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.snapshot: GpuSnapshot | None = None
        """The latest sample shown; None until the first one lands."""

    def show(self, snapshot: GpuSnapshot) -> None:
        """Draw a new sample."""
        self.snapshot = snapshot
        self.refresh(layout=True)

    def chart_rows(self) -> int:
        """Taller charts on a taller terminal; 4 rows keep one GPU and its processes on 80x24."""
        return 8 if self.app.size.height >= 40 else 4

    def lines(self, width: int | None = None) -> list[str]:
        """What the cards show at `width` (default: the current width)."""
        if self.snapshot is None:
            return ["sampling..."]
        width = width or self.content_size.width or 78
        window_s = self.app.gpu_feed.history.window_s
        reading = self.snapshot.reading
        if not reading.gpus:
            return host_lines(self.snapshot, width, self.chart_rows(), window_s)
        lines: list[str] = []
        for gpu in reading.gpus:
            if lines:
                lines.append("")
            lines += card_lines(self.snapshot, gpu, width, self.chart_rows(), window_s)
        return lines

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.lines(width))

    def render(self) -> Text:
        return Text("\n".join(self.lines()), no_wrap=True, overflow="ellipsis")


class GpuScreen(ReportsWorkerFailures, Screen[None]):
    """All GPUs at once; `run` (a RunDir, or None) decides which processes are marked as its trainer."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("g", "back", "Back", show=False),
    ]

    def __init__(self, run: Any = None):
        super().__init__()
        self.run = run
        self.snapshot: GpuSnapshot | None = None
        """The latest sample drawn (tests read it)."""
        self._rows: list[tuple[str, ...]] = []

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="gpu-title", classes="title", markup=False)
        with VerticalScroll(id="gpu-cards-scroll"):
            yield GpuCards(id="gpu-cards")
        yield DataTable(id="gpu-procs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def _title(self) -> str:
        whose = f"run {self.run.name}: * = its trainer" if self.run is not None else "no run open: nothing marked"
        return f"GPU · {whose} · every {self.app.gpu_refresh_s:g} s"

    def on_mount(self) -> None:
        fill_table(self.query_one("#gpu-procs", DataTable), PROCESS_COLUMNS, [], [])
        self.query_one("#gpu-procs").border_title = "processes"
        self.set_interval(self.app.gpu_refresh_s, self._tick)

    def _tick(self) -> None:
        if self.is_current:
            self.sample()

    def on_screen_resume(self) -> None:  # also on the first push: the first sample without a wait
        self.sample()

    def sample(self) -> None:
        """Start one sample in a worker thread; it posts GpuSampled."""
        self._sample(self.run)

    @work(thread=True, exclusive=True, group="gpu", exit_on_error=False, description="sampling the GPUs")
    def _sample(self, run: Any) -> None:
        trainer = run_trainer(run) if run is not None else None
        self.post_message(GpuSampled(self.app.gpu_feed.sample(trainer)))

    @on(GpuSampled)
    def _show(self, message: GpuSampled) -> None:
        snapshot: GpuSnapshot = message.snapshot
        self.snapshot = snapshot
        self.query_one("#gpu-cards", GpuCards).show(snapshot)
        table = self.query_one("#gpu-procs", DataTable)
        processes = snapshot.reading.processes
        rows = [process_row(process, command_width=10_000) for process in processes]
        others = sum(max([cell_len(label)] + [cell_len(row[i]) for row in rows])
                     for i, (label, _) in enumerate(PROCESS_COLUMNS[:-1]))
        room = (table.content_size.width or self.app.size.width) - others - 2 * len(PROCESS_COLUMNS) - 1
        rows = [process_row(process, command_width=max(room, 20)) for process in processes]
        if rows != self._rows:
            self._rows = rows
            cursor = table.cursor_row
            fill_table(table, PROCESS_COLUMNS, rows, [f"{p.gpu_index}:{p.pid}" for p in processes])
            if rows:
                table.move_cursor(row=min(cursor, len(rows) - 1))
        own = sum(1 for p in processes if p.own)
        title = f"processes: {len(processes)}" if processes else "processes: none on any GPU"
        if any(p.on_cpu for p in processes):
            title += ", the trainer on the CPU"
        table.border_title = title + (f" ({own} of this run)" if own else "")

    def action_back(self) -> None:
        self.app.pop_screen()
