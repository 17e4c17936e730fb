"""Filling a DataTable with explicit column widths.

DataTable's auto-width columns can keep the width of the header when rows arrive after
a first render (its line cache outlives the re-measure), so tables here are rebuilt
with widths measured from the rows themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from textual.widgets import DataTable

from tui.plain import plain


def fill_table(table: DataTable, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]],
               keys: Sequence[str], gap: int = 0) -> None:
    """Replace columns and rows; each column as wide as its widest cell or label, plus `gap` blank cells
    (for a table whose cell_padding is 0: one space between columns instead of two).

    Cells are plain text (names and tags come from disk): never parsed as markup, controls made visible."""
    cells = [[plain(cell) for cell in row] for row in rows]
    table.clear(columns=True)
    for index, (label, key) in enumerate(columns):
        width = max([cell_len(label)] + [row[index].cell_len for row in cells]) + gap
        table.add_column(label, key=key, width=width)
    for key, row in zip(keys, cells):
        table.add_row(*row, key=key)
