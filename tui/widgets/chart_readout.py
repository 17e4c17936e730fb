"""The cursor readout under a screen's charts: a line or two that change on every cursor key.

A Static's update lays the whole screen out again (its height may change), which re-renders every
panel (the checkpoint table costs most); this widget repaints itself alone unless the number of
lines it wraps to changes.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class ChartReadout(Widget):
    """Text from the data (plain, never markup), hidden while empty."""

    DEFAULT_CSS = """
    ChartReadout { height: auto; max-height: 3; padding: 0 1; }
    """

    text: reactive[str] = reactive("", layout=False)
    """The readout shown; empty hides the widget."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines = 0
        self.display = False

    def render(self) -> Text:
        return Text(self.text)

    def watch_text(self, text: str) -> None:
        if self.display != bool(text):
            self.display = bool(text)
        width = max(1, (self.size.width or self.app.size.width) - 2)  # less the padding
        lines = len(Text(text).wrap(self.app.console, width)) if text else 0
        if lines != self._lines:
            self._lines = lines
            self.refresh(layout=True)
