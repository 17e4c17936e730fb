"""The end of a text (train.log, the events), newest line at the bottom, long lines wrapped, never cut."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from tui.plain import visible


class LogTail(Widget):
    """Shows as many of the newest lines as fit, each wrapped to the width: at 80 columns a 150-character
    progress line reads whole over a few rows instead of being cut. Lines are plain text, never markup."""

    DEFAULT_CSS = """
    LogTail { height: 1fr; }
    """
    can_focus = True  # tab reaches it, and z shows more of it

    def __init__(self, empty_text: str = "(train.log is empty)", *, id: str | None = None):
        super().__init__(id=id)
        self.empty_text = empty_text
        self.lines: list[str] = []
        """The lines shown (the newest last), as given."""

    def show(self, lines: list[str]) -> None:
        """Replace the lines; repaint only when they changed."""
        if lines == self.lines:
            return
        self.lines = list(lines)
        self.refresh()

    def rows(self, width: int, height: int) -> list[str]:
        """The screen rows drawn at `width` x `height`: the wrapped tail of the lines."""
        if width <= 0 or height <= 0:
            return []
        rows: list[str] = []
        for line in reversed(self.lines or [self.empty_text]):
            wrapped = Text(visible(line.expandtabs())).wrap(self.app.console, width, no_wrap=False)
            rows[:0] = [str(part).rstrip() for part in wrapped] or [""]
            if len(rows) >= height:
                break
        return rows[-height:]

    def render(self) -> Text:
        return Text("\n".join(self.rows(self.content_size.width, self.content_size.height)), no_wrap=True,
                    overflow="crop")
