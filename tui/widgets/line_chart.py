"""A line chart drawn as text (tui/widgets/chart_canvas.py); it redraws only when shown new lines.

The mouse wheel zooms around the point under the pointer and a click puts the cursor there:
the chart posts `LineChart.Zoom` and `LineChart.Point` and the screen that owns the view
decides what they change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from tui.series import nice_ticks
from tui.widgets.chart_canvas import PALETTE, Axis, Picture, Stroke, draw
from tui.plain import plain


@dataclass(frozen=True)
class ChartLine:
    """One series as the chart draws it; `marker` tells lines apart without colour.

    `steps` are the x positions: steps, or seconds on a time axis.
    """

    label: str
    steps: np.ndarray
    values: np.ndarray
    marker: str = "braille"
    connect: bool = True  # False: points only (markers such as the val-loss minima)
    style: str = ""  # a colour; "" picks one from the palette by position
    under: bool = False  # drawn only where no other line is (a smoothed line's raw points)


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


def value_label(value: float) -> str:
    """A y tick label: 0.5, 1.25, 3e-04, 1.2k."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10_000:
        return f"{value / 1000:.3g}k"
    if magnitude < 0.001:
        return f"{value:.0e}"
    return f"{value:.4g}"


def padded_limits(lines: list[ChartLine]) -> tuple[float, float] | None:
    """min..max of every value drawn, when the caller gave no y-range."""
    values = [line.values[np.isfinite(line.values)] for line in lines]
    values = [v for v in values if len(v)]
    if not values:
        return None
    low, high = min(float(v.min()) for v in values), max(float(v.max()) for v in values)
    pad = (high - low) * 0.05 if high > low else abs(high) * 0.1 or 1.0
    return low - pad, high + pad


class LineChart(Widget):
    """Several lines on shared axes, a fixed y-range, vertical marks and a cursor.

    The legend lives in the border title (set by the caller) so the plot keeps every row.
    """

    DEFAULT_CSS = """
    LineChart { height: 1fr; width: 1fr; }
    """

    class Zoom(Message):
        """The mouse wheel over the chart: zoom by `factor` around x = `at`."""

        def __init__(self, chart: LineChart, factor: float, at: float | None) -> None:
            super().__init__()
            self.chart, self.factor, self.at = chart, factor, at

    class Point(Message):
        """A click on the chart at x = `at`: put the cursor there."""

        def __init__(self, chart: LineChart, at: float) -> None:
            super().__init__()
            self.chart, self.at = chart, at

    def __init__(self, title: str, empty_text: str = "no data yet", *, id: str | None = None,
                 classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.title = title
        self.empty_text = empty_text
        self.lines: list[ChartLine] = []
        self.y_limits: tuple[float, float] | None = None
        self.x_limits: tuple[float, float] | None = None
        self.vlines: list[float] = []
        """Steps marked with a vertical line (e.g. where overtraining began)."""
        self.cursor: float | None = None
        """The x of the cursor line, None: none."""
        self.x_ticks: tuple[list[float], list[str]] | None = None
        self.y_ticks: tuple[list[float], list[str]] | None = None
        self._picture: Picture | None = None
        self._picture_key: tuple[int, int, int] | None = None
        self._drawn_x: tuple[float, float] | None = None
        self._version = 0
        self._strips_of: Picture | None = None
        self._strips: dict[int, Strip] = {}

    def on_mount(self) -> None:
        self.border_title = plain(f"{self.title}: {self.empty_text}")  # metric names come from disk: never markup

    def show(self, lines: list[ChartLine], y_limits: tuple[float, float] | None, title: str,
             vlines: list[float] | None = None, *, x_limits: tuple[float, float] | None = None,
             x_ticks: tuple[list[float], list[str]] | None = None,
             y_ticks: tuple[list[float], list[str]] | None = None, cursor: float | None = None) -> None:
        """Replace what is drawn and redraw once."""
        self.lines = [line for line in lines if len(line.steps)]
        self.y_limits, self.title, self.vlines = y_limits, title, list(vlines or [])
        self.x_limits, self.x_ticks, self.y_ticks, self.cursor = x_limits, x_ticks, y_ticks, cursor
        self.border_title = plain(title if self.lines else f"{title}: {self.empty_text}")
        self._version += 1
        self.refresh()

    def picture(self) -> Picture:
        """The chart drawn at the widget's size (kept until the lines or the size change)."""
        width, height = self.content_size.width, self.content_size.height
        key = (self._version, width, height)
        if self._picture is None or self._picture_key != key:
            self._picture, self._picture_key = self._draw(width, height), key
        return self._picture

    def _draw(self, width: int, height: int) -> Picture:
        if not self.lines or width <= 0 or height <= 0:
            return Picture(Text(""))
        x_limits = self.x_limits or (min(float(line.steps.min()) for line in self.lines),
                                     max(float(line.steps.max()) for line in self.lines))
        if x_limits[1] <= x_limits[0]:
            x_limits = (x_limits[0] - 1, x_limits[1] + 1)
        self._drawn_x = x_limits
        y_limits = self.y_limits or padded_limits(self.lines) or (0.0, 1.0)
        if self.x_ticks is not None:
            x_positions, x_labels = self.x_ticks
        else:
            x_positions = [float(t) for t in step_ticks(*x_limits, count=max(3, min(6, width // 12)))]
            x_labels = [step_label(int(t)) for t in x_positions]
        if self.y_ticks is not None:
            y_positions, y_labels = self.y_ticks
        else:
            y_positions = nice_ticks(*y_limits, count=max(3, min(6, height - 1)))
            y_labels = [value_label(v) for v in y_positions]
        strokes = [Stroke(line.steps, line.values, line.marker, line.connect,
                          line.style or PALETTE[index % len(PALETTE)], line.under)
                   for index, line in enumerate(self.lines)]
        return draw(strokes, Axis(*x_limits, x_positions, x_labels), Axis(*y_limits, y_positions, y_labels),
                    width, height, self.vlines, self.cursor)

    def render(self) -> Text:
        return self.picture().text

    def render_line(self, y: int) -> Strip:
        """One row of the picture as segments, cached: no Text to convert on each repaint."""
        picture = self.picture()
        if self._strips_of is not picture:
            self._strips_of, self._strips = picture, {}
        strip = self._strips.get(y)
        if strip is None:
            width = self.content_size.width
            base = self.rich_style
            if y >= len(picture.rows):
                strip = Strip([Segment(" " * width, base)], width)
            else:
                row, segments, at = picture.rows[y], [], 0
                for begin, end, style in picture.runs[y]:
                    if begin > at:
                        segments.append(Segment(row[at:begin], base))
                    segments.append(Segment(row[begin:end], base + Style.parse(style)))
                    at = end
                if at < len(row):
                    segments.append(Segment(row[at:], base))
                strip = Strip(segments).extend_cell_length(width, base).crop(0, width)
            self._strips[y] = strip
        return strip

    def x_at(self, column: int) -> float | None:
        """The x value under a column of the widget (None outside the plot)."""
        picture = self._picture
        if picture is None or not picture.plot_width or self._drawn_x is None:
            return None
        offset = column - picture.plot_left
        if not 0 <= offset < picture.plot_width:
            return None
        low, high = self._drawn_x
        return low + (offset + 0.5) / picture.plot_width * (high - low)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.post_message(self.Zoom(self, 0.8, self.x_at(event.x)))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.post_message(self.Zoom(self, 1.25, self.x_at(event.x)))

    def on_click(self, event: events.Click) -> None:
        at = self.x_at(event.x)
        if at is not None:
            self.post_message(self.Point(self, at))
