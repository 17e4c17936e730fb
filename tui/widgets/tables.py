"""Filling a DataTable with explicit column widths.

DataTable's auto-width columns can keep the width of the header when rows arrive after
a first render (its line cache outlives the re-measure), so tables here are rebuilt
with widths measured from the rows themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from textual.widgets import DataTable


def fill_table(table: DataTable, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]],
               keys: Sequence[str], gap: int = 0) -> None:
    """Replace columns and rows; each column as wide as its widest cell or label, plus `gap` blank cells
    (for a table whose cell_padding is 0: one space between columns instead of two)."""
    table.clear(columns=True)
    for index, (label, key) in enumerate(columns):
        width = max([cell_len(label)] + [cell_len(row[index]) for row in rows]) + gap
        table.add_column(label, key=key, width=width)
    for key, row in zip(keys, rows):
        table.add_row(*row, key=key)
