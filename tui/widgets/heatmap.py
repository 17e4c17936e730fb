"""A matrix drawn with shade characters, resized to the panel: readable without colour."""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.widget import Widget

from tui.series import resize_max

SHADES = " ░▒▓█"


def render_shades(matrix: np.ndarray, rows: int, cols: int, normalise: str = "max") -> list[str]:
    """`rows` strings of `cols` shade characters; row 0 is the top (highest matrix row)."""
    if rows <= 0 or cols <= 0:
        return []
    grid = resize_max(matrix, rows, cols)[::-1]
    finite = grid[np.isfinite(grid)]
    if finite.size == 0:
        return [" " * cols] * rows
    low = 0.0 if normalise == "max" else float(finite.min())
    high = float(finite.max())
    span = high - low if high > low else 1.0
    scaled = np.clip((np.nan_to_num(grid, nan=low) - low) / span, 0.0, 1.0)
    levels = np.minimum((scaled * len(SHADES)).astype(int), len(SHADES) - 1)
    table = np.array(list(SHADES))
    return ["".join(row) for row in table[levels]]


class Heatmap(Widget):
    """Shows one 2-D array (x = columns, y = rows, origin bottom-left) filling the widget."""

    DEFAULT_CSS = """
    Heatmap { height: 1fr; width: 1fr; }
    """

    def __init__(self, empty_text: str = "no picture yet", *, id: str | None = None,
                 classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.matrix: np.ndarray | None = None
        self.normalise = "max"
        self.empty_text = empty_text

    def show(self, matrix: np.ndarray | None, normalise: str = "max", empty_text: str | None = None) -> None:
        """Draw `matrix` (None = the empty text); "max" scales by the maximum, "minmax" by the range."""
        self.matrix, self.normalise = matrix, normalise
        if empty_text is not None:
            self.empty_text = empty_text
        self.refresh()

    def render(self) -> Text:
        width, height = self.content_size.width, self.content_size.height
        if self.matrix is None or self.matrix.ndim != 2 or self.matrix.size == 0:
            return Text(self.empty_text)
        return Text("\n".join(render_shades(self.matrix, height, width, self.normalise)))
