"""The GPU panel: one line per GPU (utilisation, memory, temperature, power), then the host."""

from __future__ import annotations

from textual.widgets import Static

from tui.gpu import Reading, format_reading


class GpuPanel(Static):
    """Shows the latest `tui.gpu.Reading`; unchanged readings cost nothing."""

    DEFAULT_CSS = """
    GpuPanel { height: auto; }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__("GPU: sampling...", id=id)
        self._text = ""

    def show(self, reading: Reading) -> None:
        text = "\n".join(format_reading(reading)) or "no readings"
        if text != self._text:
            self._text = text
            self.update(text)
