"""A line chart (textual-plotext) that draws pre-downsampled series and redraws only on new data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from textual_plotext import PlotextPlot


@dataclass(frozen=True)
class ChartLine:
    """One series as the chart draws it; `marker` tells lines apart without colour."""

    label: str
    steps: np.ndarray
    values: np.ndarray
    marker: str = "braille"
    connect: bool = True  # False: points only (markers such as the val-loss minima)


class LineChart(PlotextPlot):
    """Step on x, value on y; several lines and a fixed y-range.

    The legend lives in the border title (set by the caller) so the plot keeps every row.
    """

    DEFAULT_CSS = """
    LineChart { height: 1fr; width: 1fr; }
    """

    def __init__(self, title: str, empty_text: str = "no data yet", *, id: str | None = None,
                 classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.title = title
        self.empty_text = empty_text
        self.lines: list[ChartLine] = []
        self.y_limits: tuple[float, float] | None = None
        self.vlines: list[float] = []
        """Steps marked with a vertical line (e.g. where overtraining began)."""
        self._replot()

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = f"{self.title}: {self.empty_text}"

    def show(self, lines: list[ChartLine], y_limits: tuple[float, float] | None, title: str,
             vlines: list[float] | None = None) -> None:
        """Replace what is drawn and redraw once."""
        self.lines = [line for line in lines if len(line.steps)]
        self.y_limits, self.title, self.vlines = y_limits, title, list(vlines or [])
        self.border_title = title if self.lines else f"{title}: {self.empty_text}"
        self._replot()
        self.refresh()

    def _replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        for line in self.lines:
            draw = plt.plot if line.connect else plt.scatter
            draw(line.steps.tolist(), line.values.tolist(), marker=line.marker)
        if self.lines:
            for step in self.vlines:
                plt.vline(step)
        if self.y_limits is not None:
            plt.ylim(*self.y_limits)
