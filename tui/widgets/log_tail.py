"""The end of train.log, scrolled to the newest line."""

from __future__ import annotations

from textual.widgets import Log


class LogTail(Log):
    """Replaces its lines only when the log's tail changed."""

    DEFAULT_CSS = """
    LogTail { height: 1fr; scrollbar-size-horizontal: 0; }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id, max_lines=500, auto_scroll=True)
        self._shown: list[str] = []

    def show(self, lines: list[str]) -> None:
        if lines == self._shown:
            return
        self._shown = list(lines)
        self.clear()
        self.write_lines(lines or ["(train.log is empty)"])
