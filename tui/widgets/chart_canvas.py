"""Draws chart lines as text: braille dots (2x4 per cell), marker characters, axis labels.

numpy rasterises every segment at once, so a chart of 160x40 cells draws in a few
milliseconds (plotext took 80 ms for one 150x20 chart, in pure Python per cell). Marker
characters (•, +, x, ▼, ...) tell lines apart without colour; colour is a second cue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from rich.text import Text

#: The bit of each braille dot, by dot row (0 at the top) and dot column.
_DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint8)
_BRAILLE = np.array([chr(0x2800 + bits) for bits in range(256)], dtype="<U1")
VLINE = "│"
CURSOR = "┆"
#: Colours of the lines in drawing order (a second cue: every line also has its own marker).
PALETTE = ("cyan", "yellow", "green", "magenta", "red", "blue", "bright_white")


@dataclass(frozen=True)
class Axis:
    """An axis range and its tick positions with their labels."""

    low: float
    high: float
    ticks: Sequence[float] = ()
    labels: Sequence[str] = ()


@dataclass(frozen=True)
class Stroke:
    """One line to draw: x and y arrays, a marker ("braille" or one character), joined or as points."""

    x: np.ndarray
    y: np.ndarray
    marker: str = "braille"
    connect: bool = True
    style: str = ""
    under: bool = False
    """Drawn only into cells no other stroke uses (raw points under a smoothed line)."""


@dataclass
class Picture:
    """A drawn chart: its text and where the plot area sits (for mouse positions)."""

    text: Text
    plot_left: int = 0
    plot_width: int = 0
    rows: list[str] = field(default_factory=list)
    runs: list[list[tuple[int, int, str]]] = field(default_factory=list)
    """Per row, the (start, end, style) of each coloured run of cells (the widget paints rows from these)."""


def _segment_points(xs: np.ndarray, ys: np.ndarray, connect: bool) -> tuple[np.ndarray, np.ndarray]:
    """Integer grid points on the polyline through (xs, ys) (or the points alone)."""
    if not connect or len(xs) < 2:
        return np.rint(xs).astype(np.int64), np.rint(ys).astype(np.int64)
    x0, y0, dx, dy = xs[:-1], ys[:-1], np.diff(xs), np.diff(ys)
    counts = np.maximum(np.abs(dx), np.abs(dy)).astype(np.int64) + 1
    total = int(counts.sum())
    segment = np.repeat(np.arange(len(counts)), counts)
    offsets = np.cumsum(counts) - counts
    t = (np.arange(total) - offsets[segment]) / np.maximum(counts - 1, 1)[segment]
    return np.rint(x0[segment] + t * dx[segment]).astype(np.int64), np.rint(y0[segment] + t * dy[segment]).astype(np.int64)


def _scaled(values: np.ndarray, low: float, high: float, size: int, flip: bool) -> np.ndarray:
    """Values mapped onto 0..size-1 (flipped: the top row is the highest value), clipped just outside."""
    span = high - low if high > low else 1.0
    scaled = (values - low) / span * (size - 1)
    if flip:
        scaled = (size - 1) - scaled
    return np.clip(scaled, -2.0, size + 1.0)


def draw(strokes: Sequence[Stroke], x_axis: Axis, y_axis: Axis, width: int, height: int,
         vlines: Sequence[float] = (), cursor: float | None = None) -> Picture:
    """The chart as `height` lines of `width` cells: y labels on the left, x labels on the last line."""
    label_width = max((len(label) for label in y_axis.labels), default=0) + 1
    plot_width, plot_height = width - label_width, height - 1
    if plot_width < 4 or plot_height < 1:
        return Picture(Text(""))
    dots = np.zeros((plot_height * 4, plot_width * 2), dtype=bool)
    dot_owner = np.full((plot_height, plot_width), -1, dtype=np.int64)
    chars = np.full((plot_height, plot_width), "", dtype="<U1")
    char_owner = np.full((plot_height, plot_width), -1, dtype=np.int64)
    under = np.full((plot_height, plot_width), "", dtype="<U1")
    under_owner = np.full((plot_height, plot_width), -1, dtype=np.int64)
    for index, stroke in enumerate(strokes):
        x, y = np.asarray(stroke.x, dtype=np.float64), np.asarray(stroke.y, dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        if not len(x):
            continue
        braille = stroke.marker == "braille"
        columns, rows = (plot_width * 2, plot_height * 4) if braille else (plot_width, plot_height)
        px, py = _segment_points(_scaled(x, x_axis.low, x_axis.high, columns, False),
                                 _scaled(y, y_axis.low, y_axis.high, rows, True), stroke.connect)
        inside = (px >= 0) & (px < columns) & (py >= 0) & (py < rows)
        px, py = px[inside], py[inside]
        if braille:
            dots[py, px] = True
            dot_owner[py // 4, px // 2] = index
        elif stroke.under:
            under[py, px] = stroke.marker[:1]
            under_owner[py, px] = index
        else:
            chars[py, px] = stroke.marker[:1]
            char_owner[py, px] = index
    bits = np.zeros((plot_height, plot_width), dtype=np.int64)
    for dot_row in range(4):
        for dot_column in range(2):
            bits |= dots[dot_row::4, dot_column::2].astype(np.int64) * int(_DOT_BITS[dot_row, dot_column])
    # layers, lowest first: raw points under lines, vertical marks, braille lines, marker characters
    grid = np.full((plot_height, plot_width), " ", dtype="<U1")
    owners = np.full((plot_height, plot_width), -1, dtype=np.int64)
    placed = under != ""
    grid[placed], owners[placed] = under[placed], under_owner[placed]
    for value, mark in [*((v, VLINE) for v in vlines), *(((cursor, CURSOR),) if cursor is not None else ())]:
        column = int(round(float(_scaled(np.array([value]), x_axis.low, x_axis.high, plot_width, False)[0])))
        if 0 <= column < plot_width and x_axis.low <= value <= x_axis.high:
            grid[:, column], owners[:, column] = mark, -2
    placed = bits > 0
    grid[placed], owners[placed] = _BRAILLE[bits[placed]], dot_owner[placed]
    placed = chars != ""
    grid[placed], owners[placed] = chars[placed], char_owner[placed]
    tick_rows: dict[int, str] = {}
    for tick, label in zip(y_axis.ticks, y_axis.labels):
        row = int(round(float(_scaled(np.array([tick]), y_axis.low, y_axis.high, plot_height, True)[0])))
        if 0 <= row < plot_height and row not in tick_rows:
            tick_rows[row] = label
    text, rows, runs = Text(no_wrap=True, overflow="crop"), [], []
    for row, (cells, row_owners) in enumerate(zip(grid.tolist(), owners)):
        label = tick_rows.get(row)
        prefix = f"{label:>{label_width - 1}}┤" if label is not None else " " * (label_width - 1) + "│"
        line = prefix + "".join(cells)
        rows.append(line)
        start = len(text)
        text.append(line + "\n")
        styled = _style_runs(len(prefix), row_owners, strokes)
        runs.append(styled)
        for begin, end, style in styled:
            text.stylize(style, start + begin, start + end)
    axis_row = _x_labels(x_axis, label_width, plot_width)
    rows.append(axis_row)
    runs.append([])
    text.append(axis_row)
    return Picture(text, label_width, plot_width, rows, runs)


def _style_runs(offset: int, owners: np.ndarray, strokes: Sequence[Stroke]) -> list[tuple[int, int, str]]:
    """The (start, end, style) of each run of cells drawn by one stroke (vertical marks dim), from `offset`."""
    edges = np.flatnonzero(np.diff(owners)) + 1
    styled = []
    for begin, end in zip([0, *edges.tolist()], [*edges.tolist(), len(owners)]):
        owner = int(owners[begin])
        style = "dim" if owner == -2 else (strokes[owner].style if owner >= 0 else "")
        if style:
            styled.append((offset + begin, offset + end, style))
    return styled


def _x_labels(x_axis: Axis, left: int, plot_width: int) -> str:
    """The x tick labels centred under their columns, skipping any that would overlap."""
    row = [" "] * (left + plot_width)
    taken = -1
    for tick, label in zip(x_axis.ticks, x_axis.labels):
        column = left + int(round(float(_scaled(np.array([tick]), x_axis.low, x_axis.high, plot_width, False)[0])))
        begin = max(left, min(column - len(label) // 2, left + plot_width - len(label)))
        if begin <= taken or not (x_axis.low <= tick <= x_axis.high):
            continue
        row[begin:begin + len(label)] = list(label)
        taken = begin + len(label)
    return "".join(row).rstrip()
