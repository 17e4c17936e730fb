"""The run's checkpoints: step, val loss, read-through health, tags (`recommended`, ...), time written, size.

`reads` is how many held-out sentences the checkpoint read to the end, `heard` how many a
speech recogniser understood (trainer/health_records.py); `…` while a live run has not yet
checked the checkpoint, `-` when there is no figure.
"""

from __future__ import annotations

import time
from typing import Any

from rich.cells import cell_len
from textual.widgets import DataTable

from trainer.health_records import HealthSummary
from trainer.rundir import CheckpointFile
from tui.summary import format_bytes
from tui.widgets.tables import fill_table

COLUMNS = (("step", "step"), ("val loss", "val"), ("reads", "reads"), ("heard", "heard"), ("tags", "tags"),
           ("written", "written"), ("size", "size"))
PENDING = "…"  # a live run's checkpoint whose health is not computed yet
DROPPED_WHEN_NARROW = (5, 6)  # `written`, then `size`: left out when the table is too narrow for all


def health_cells(health: HealthSummary | None, pending: bool) -> tuple[str, str]:
    """(reads to the end, understood) as `10/12`, `3/12`; `…` while pending, else `-`."""
    if health is None:
        return (PENDING, PENDING) if pending else ("-", "-")
    return health.reads_text(), health.understood_text()


class CheckpointTable(DataTable):
    """Newest checkpoint first; the cursor starts on the recommended one and stays where the user puts it."""

    DEFAULT_CSS = """
    CheckpointTable { height: 1fr; scrollbar-size-horizontal: 0; }
    """

    def __init__(self, *, id: str | None = None):
        # one space between columns (cell_padding 0 and a blank cell at each column's end): at 80 columns
        # step, val loss, reads, heard and tags fit
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, cell_padding=0)
        self.checkpoints: list[CheckpointFile] = []
        self.recommended: int | None = None
        """The step the analysis recommends (`trainer.overtrain.recommend`: speaks best, then lowest val loss)."""
        self._shown: list[tuple[Any, ...]] = []
        self._placed: int | None = None  # where we last put the cursor ourselves
        self.shown_columns: list[str] = [label for label, _ in COLUMNS]
        """The column labels drawn at the current width."""

    def on_mount(self) -> None:
        fill_table(self, COLUMNS, [], [], gap=1)

    def show(self, checkpoints: list[CheckpointFile], records: dict[int, dict[str, Any]],
             tags: dict[int, list[str]] | None = None, recommended: int | None = None,
             health: dict[int, HealthSummary] | None = None, pending: bool = False) -> None:
        """Redraw if the files, their records, health or tags changed; follow the recommendation unless
        the user moved. `pending`: the run is live, so a checkpoint without health shows `…`."""
        rows = []
        for checkpoint in reversed(checkpoints):
            record = records.get(checkpoint.step, {})
            val = record.get("val_loss")
            shown_tags = tags.get(checkpoint.step, []) if tags is not None else record.get("tags") or []
            if not isinstance(shown_tags, list):
                shown_tags = []
            rows.append((checkpoint.step,
                         f"{val:.4f}" if isinstance(val, (int, float)) and not isinstance(val, bool) else "-",
                         *health_cells((health or {}).get(checkpoint.step), pending),
                         ",".join(str(t) for t in shown_tags) or "-",
                         time.strftime("%m-%d %H:%M", time.localtime(checkpoint.mtime)),
                         format_bytes(checkpoint.size)))
        self.checkpoints = list(reversed(checkpoints))
        self.recommended = recommended if any(c.step == recommended for c in checkpoints) else None
        if rows == self._shown:
            return
        selected = self.selected_step()
        follow = selected is None or selected == self._placed  # the user has not chosen another row
        self._shown = rows
        self._fill()
        target = self.recommended if follow and self.recommended is not None else selected
        if target is not None and any(row[0] == target for row in rows):
            self.move_cursor(row=self.get_row_index(str(target)))
        if follow:
            self._placed = self.selected_step()

    def _kept_columns(self) -> list[int]:
        """The columns that fit the table's width: `written`, then `size`, are left out first."""
        cells = [tuple(str(cell) for cell in row) for row in self._shown]
        kept = list(range(len(COLUMNS)))
        width = self.size.width

        def needed() -> int:  # each column is as wide as its widest cell, plus the space after it
            return sum(max([cell_len(COLUMNS[i][0])] + [cell_len(row[i]) for row in cells]) + 1 for i in kept)

        for optional in DROPPED_WHEN_NARROW:
            if width and needed() > width:
                kept.remove(optional)
        return kept

    def _fill(self) -> None:
        kept = self._kept_columns()
        cells = [tuple(str(cell) for cell in row) for row in self._shown]
        self.shown_columns = [COLUMNS[i][0] for i in kept]
        fill_table(self, [COLUMNS[i] for i in kept], [tuple(row[i] for i in kept) for row in cells],
                   [row[0] for row in cells], gap=1)

    def on_resize(self) -> None:
        """Refit the columns to a new width, keeping the cursor's row."""
        if not self._shown or [COLUMNS[i][0] for i in self._kept_columns()] == self.shown_columns:
            return
        selected = self.selected_step()
        self._fill()
        if selected is not None:
            self.move_cursor(row=self.get_row_index(str(selected)))

    def user_chose(self) -> bool:
        """Whether the cursor is on a row the user moved to (not where the table placed it)."""
        return self.selected_step() is not None and self.selected_step() != self._placed

    def selected_step(self) -> int | None:
        if not self.row_count:
            return None
        try:
            return int(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:
            return None

    def selected(self) -> CheckpointFile | None:
        step = self.selected_step()
        return next((c for c in self.checkpoints if c.step == step), None)
