"""Does the newest checked checkpoint speak? Its read-through health in a line or three of plain text."""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget

from trainer.health_records import HealthSummary, heard_lines, health_line
from tui.plain import visible


class HealthLine(Widget):
    """`step 300: reads to the end 10/12 · stops 10/12 · understood 3/12 · WER 0.71`, then what was heard.

    Hidden until the run has a health record. Texts come from disk, so they are drawn as plain
    text (never markup) and each line is cut with an ellipsis to the width.
    """

    DEFAULT_CSS = """
    HealthLine { height: auto; padding: 0 1; }
    HealthLine.-empty { display: none; }
    """

    health: reactive[HealthSummary | None] = reactive(None, layout=True)
    """The health record shown (the newest checked checkpoint's), None for none yet."""

    heard_count: reactive[int] = reactive(1, layout=True)
    """How many sentences' recognitions to show under the figures."""

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.add_class("-empty")

    def watch_health(self, health: HealthSummary | None) -> None:
        self.set_class(health is None, "-empty")

    def lines(self) -> list[str]:
        """The lines drawn, as plain strings (what tests read)."""
        if self.health is None:
            return []
        return [health_line(self.health), *heard_lines(self.health, self.heard_count)]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """One row per line: lines are cut to the width, never wrapped."""
        return len(self.lines())

    def render(self) -> Text:
        return Text(visible("\n".join(self.lines()), keep_newlines=True), no_wrap=True, overflow="ellipsis")
