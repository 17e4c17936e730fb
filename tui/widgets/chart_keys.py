"""The chart keys a screen with charts shares (Monitor, compare view): zoom, pan, cursor, follow,
log scale, outliers, x axis, and the mouse wheel and clicks the charts post.

A screen mixes in `ChartKeys`, adds `CHART_BINDINGS` to its own, keeps a `chart_window`
(tui.widgets.chart_model.ChartWindow) and answers `chart_extent()`, `plot_columns()` and
`chart_window_changed()`.
"""

from __future__ import annotations

from dataclasses import replace

from textual.binding import Binding

from tui.widgets.chart_model import ChartWindow
from tui.widgets.line_chart import LineChart

ZOOM_STEP = 0.5  # + halves the x range in view, - doubles it
PAN_STEP = 0.25  # a pan moves a quarter of the view

#: left/right and home/end act on the charts even while a table has the focus (up/down stay the table's).
CHART_BINDINGS = [
    Binding("left", "chart_cursor(-1)", "Cursor left", show=False, priority=True),
    Binding("right", "chart_cursor(1)", "Cursor right", show=False, priority=True),
    Binding("shift+left,less_than_sign,comma", "chart_pan(-1)", "Pan left", show=False),
    Binding("shift+right,greater_than_sign,full_stop", "chart_pan(1)", "Pan right", show=False),
    Binding("plus,equals_sign", "chart_zoom(0.5)", "Zoom in", show=False),
    Binding("minus,underscore", "chart_zoom(2.0)", "Zoom out", show=False),
    Binding("home", "chart_home", "Start", show=False, priority=True),
    Binding("end", "chart_end", "End", show=False, priority=True),
    Binding("f", "chart_follow", "Follow", show=False),
    Binding("0", "chart_whole", "Whole run", show=False),
    Binding("c", "chart_cursor_toggle", "Cursor", show=False),
    Binding("l", "chart_log", "Log y", show=False),
    Binding("o", "chart_outliers", "Outliers", show=False),
    Binding("x", "chart_axis", "X axis", show=False),
]


class ChartKeys:
    """Actions on a screen's shared chart window."""

    chart_window: ChartWindow

    def chart_extent(self) -> tuple[float, float] | None:
        """The x range of everything charted, None before any data."""
        raise NotImplementedError

    def plot_columns(self) -> int:
        """How many columns the widest chart's plot has (a cursor step is one of them)."""
        raise NotImplementedError

    def chart_window_changed(self) -> None:
        """Redraw the charts for the new `chart_window`."""
        raise NotImplementedError

    def _set_window(self, window: ChartWindow) -> None:
        if window != self.chart_window:
            self.chart_window = window
            self.chart_window_changed()

    def action_chart_cursor(self, columns: int) -> None:
        extent = self.chart_extent()
        if extent is not None:
            self._set_window(self.chart_window.cursor_moved(columns, extent, self.plot_columns()))

    def action_chart_pan(self, direction: int) -> None:
        extent = self.chart_extent()
        if extent is not None:
            self._set_window(self.chart_window.panned(direction * PAN_STEP, extent))

    def action_chart_zoom(self, factor: float) -> None:
        extent = self.chart_extent()
        if extent is not None:
            self._set_window(self.chart_window.zoomed(factor, extent))

    def action_chart_home(self) -> None:
        extent = self.chart_extent()
        if extent is not None:
            self._set_window(self.chart_window.at_start(extent))

    def action_chart_end(self) -> None:
        self._set_window(self.chart_window.following())

    def action_chart_follow(self) -> None:
        self._set_window(self.chart_window.following())

    def action_chart_whole(self) -> None:
        self._set_window(self.chart_window.whole())

    def action_chart_cursor_toggle(self) -> None:
        if self.chart_window.cursor is not None:
            self._set_window(replace(self.chart_window, cursor=None))
        else:
            self.action_chart_cursor(0)

    def action_chart_log(self) -> None:
        self._set_window(replace(self.chart_window, log_y=not self.chart_window.log_y))

    def action_chart_outliers(self) -> None:
        self._set_window(replace(self.chart_window, outliers=not self.chart_window.outliers))

    def action_chart_axis(self) -> None:
        self._set_window(self.chart_window.next_axis())

    def on_line_chart_zoom(self, message: LineChart.Zoom) -> None:
        """The mouse wheel over a chart: zoom around the step under the pointer."""
        extent = self.chart_extent()
        if extent is not None:
            self._set_window(self.chart_window.zoomed(message.factor, extent, message.at))

    def on_line_chart_point(self, message: LineChart.Point) -> None:
        """A click on a chart: the cursor there."""
        self._set_window(replace(self.chart_window, cursor=message.at))
