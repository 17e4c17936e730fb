"""A line chart (textual-plotext) that draws pre-downsampled series and redraws only on new data."""

from __future__ import annotations

import math
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


def step_ticks(low: float, high: float, count: int = 5) -> list[int]:
    """Whole steps for the x axis at a round spacing (1, 2, 2.5 or 5 x 10^n): no "2.2" or "4.50" steps."""
    if not (math.isfinite(low) and math.isfinite(high)) or high - low < 1:
        return [int(round(low))] if math.isfinite(low) else []
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    spacing = max(1, int(next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)))
    first = math.ceil(low / spacing) * spacing
    return list(range(int(first), int(math.floor(high)) + 1, spacing))


def step_label(step: int) -> str:
    """A step as an axis label: 950, 12k, 1.5M (round thousands and millions shortened)."""
    if step >= 1_000_000 and step % 100_000 == 0:
        return f"{step / 1_000_000:g}M"
    if step >= 10_000 and step % 1000 == 0:
        return f"{step // 1000}k"
    return str(step)


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
            low = min(float(line.steps.min()) for line in self.lines)
            high = max(float(line.steps.max()) for line in self.lines)
            ticks = step_ticks(low, high)
            plt.xticks(ticks, [step_label(tick) for tick in ticks])
        if self.y_limits is not None:
            plt.ylim(*self.y_limits)
