"""The run's checkpoints: step, time written, val loss and tags from the `checkpoint` records."""

from __future__ import annotations

import time
from typing import Any

from textual.widgets import DataTable

from trainer.rundir import CheckpointFile
from tui.summary import format_bytes
from tui.widgets.tables import fill_table

COLUMNS = (("step", "step"), ("val loss", "val"), ("tags", "tags"), ("written", "written"), ("size", "size"))


class CheckpointTable(DataTable):
    """Newest checkpoint first; the cursor stays on the same step across updates."""

    DEFAULT_CSS = """
    CheckpointTable { height: 1fr; scrollbar-size-horizontal: 0; }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.checkpoints: list[CheckpointFile] = []
        self._shown: list[tuple[Any, ...]] = []

    def on_mount(self) -> None:
        fill_table(self, COLUMNS, [], [])

    def show(self, checkpoints: list[CheckpointFile], records: dict[int, dict[str, Any]]) -> None:
        """Redraw if the files or their records changed."""
        rows = []
        for checkpoint in reversed(checkpoints):
            record = records.get(checkpoint.step, {})
            val = record.get("val_loss")
            rows.append((checkpoint.step, f"{val:.4f}" if isinstance(val, (int, float)) else "-",
                         ",".join(record.get("tags") or []) or "-",
                         time.strftime("%m-%d %H:%M", time.localtime(checkpoint.mtime)),
                         format_bytes(checkpoint.size)))
        self.checkpoints = list(reversed(checkpoints))
        if rows == self._shown:
            return
        selected = self.selected_step()
        self._shown = rows
        fill_table(self, COLUMNS, [tuple(str(cell) for cell in row) for row in rows],
                   [str(row[0]) for row in rows])
        if selected is not None and any(row[0] == selected for row in rows):
            self.move_cursor(row=self.get_row_index(str(selected)))

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
