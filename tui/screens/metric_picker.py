"""The metric picker: every numeric field of a run's records, narrowed by a filter (TensorBoard's tag regex).

Type to filter (a regular expression, or plain text when it is not one), down to the list,
space to tick or untick, enter to show the ticked metrics (one metric: enter picks the one
under the cursor), ctrl+d for the default choice, escape to leave it as it was.
"""

from __future__ import annotations

import re
from typing import Sequence

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, SelectionList, Static
from textual.widgets.selection_list import Selection

MAX_METRICS = 6  # a chart tells at most this many lines apart by marker


def metric_filter(pattern: str) -> re.Pattern[str]:
    """The filter as a case-insensitive regular expression; text that is not one matches literally."""
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(pattern), re.IGNORECASE)


class MetricPicker(ModalScreen["tuple[str, ...] | None"]):
    """Choose the metrics of one chart (or one metric: `single`); dismisses with them, or None."""

    DEFAULT_CSS = """
    MetricPicker { align: center middle; }
    #picker { width: 64; max-width: 96%; height: auto; max-height: 90%; border: heavy $primary;
              padding: 0 1; background: $surface; }
    #picker-list { height: auto; max-height: 16; }
    #picker-help { height: auto; color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "apply", "Show", priority=True),
        Binding("ctrl+d", "defaults", "Default", priority=True),  # before the filter's delete-right
    ]

    def __init__(self, title: str, names: Sequence[str], chosen: Sequence[str], defaults: Sequence[str],
                 single: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.names = list(names)
        for name in [*chosen, *defaults]:  # a remembered metric not logged (yet) stays pickable
            if name not in self.names:
                self.names.append(name)
        self.chosen = list(chosen)
        """The ticked metrics in the order they were ticked (the chart's order)."""
        self.defaults = tuple(defaults)
        self.single = single

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Static(Text(self.title_text), classes="title")
            yield Input(placeholder="filter (regex), e.g. loss|lr", id="picker-filter")
            yield SelectionList[str](id="picker-list")
            keys = ("enter: show the metric under the cursor" if self.single else
                    f"space: tick (at most {MAX_METRICS}) · enter: show the ticked ones")
            yield Static(Text(f"type to filter · down: the list · {keys} · ctrl+d: default · escape: cancel"),
                         id="picker-help")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one("#picker-filter", Input).focus()

    def visible_names(self) -> list[str]:
        """The metrics the filter lets through, in list order."""
        selection = self.query_one("#picker-list", SelectionList)
        return [str(selection.get_option_at_index(i).value) for i in range(selection.option_count)]

    def _fill(self, pattern: str) -> None:
        matcher = metric_filter(pattern)
        selection = self.query_one("#picker-list", SelectionList)
        selection.clear_options()
        selection.add_options([Selection(Text(name), name, name in self.chosen)
                               for name in self.names if matcher.search(name)])

    @on(Input.Changed, "#picker-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#picker-filter")
    def _submitted(self) -> None:
        self.action_apply()

    def on_key(self, event: events.Key) -> None:
        """down leaves the filter for the list; typing in the list goes back to the filter."""
        field = self.query_one("#picker-filter", Input)
        if event.key == "down" and self.focused is field:
            selection = self.query_one("#picker-list", SelectionList)
            selection.focus()
            if selection.highlighted is None and selection.option_count:
                selection.highlighted = 0
            event.stop()
        elif self.focused is not field and (event.key == "backspace" or (
                event.is_printable and event.character not in (None, " "))):
            field.focus()
            if event.key == "backspace":
                field.value = field.value[:-1]
            else:
                field.insert_text_at_cursor(event.character or "")
            field.cursor_position = len(field.value)
            event.stop()
            event.prevent_default()

    @on(SelectionList.SelectionToggled, "#picker-list")
    def _toggled(self, event: SelectionList.SelectionToggled) -> None:
        name = str(event.selection.value)
        if name in self.chosen:
            self.chosen.remove(name)
        elif len(self.chosen) >= MAX_METRICS:
            event.selection_list.deselect(name)
            self.notify(f"at most {MAX_METRICS} metrics on one chart", severity="warning")
        else:
            self.chosen.append(name)

    def action_apply(self) -> None:
        selection = self.query_one("#picker-list", SelectionList)
        if self.single or not self.chosen:
            highlighted = selection.highlighted
            visible = self.visible_names()
            if highlighted is None and len(visible) == 1:
                highlighted = 0
            if highlighted is None:
                self.notify("no metric chosen", severity="warning")
                return
            self.dismiss((visible[highlighted],))
            return
        self.dismiss(tuple(self.chosen))

    def action_defaults(self) -> None:
        self.dismiss(self.defaults)

    def action_cancel(self) -> None:
        self.dismiss(None)
