"""The fast column reader: metrics records of the chart kinds as float64 arrays, parsed with numpy.

Attaching to a run with a million train records must take about a second, so lines laid
out as MetricsWriter writes them are parsed in blocks with no Python object per record;
any other line goes through `parse_record`, the one record parser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from trainer.rundir.records import as_float, parse_record

#: The fields that decide whether a record is well-formed (records.well_formed), with the bytes their
#: values may hold: an integer step, a loss written as a number (then checked finite).
CHECKED_FIELDS = {"step": b"-0123456789", "loss": b"+-.0123456789eE"}
#: Bytes a reader takes in one block when it catches up on a long file: bounds its memory.
READ_CHUNK_BYTES = 4 * 2**20
BLOCK_PAD = 256  # zero bytes after a block, so fixed-width windows never run off its end


@dataclass
class MetricsColumns:
    """New metrics records: the chosen kinds' numbers as arrays, every other record as a dict.

    `columns[kind]["line"]` and `record_lines` number the lines read by this call (0-based)
    so that callers can tell what came before what; `tails[kind]` holds the newest records
    of the kind whole, oldest first, and `tail_lines[kind]` their line numbers.
    """

    fields: dict[str, tuple[str, ...]]
    tail: int = 50
    drop: frozenset[str] = frozenset()
    """Kinds whose records are skipped without a dict each (a query that needs none of them)."""
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    record_lines: list[int] = field(default_factory=list)
    tails: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tail_lines: dict[str, list[int]] = field(default_factory=dict)
    lines: int = 0
    _parts: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    _raw_tails: dict[str, list[tuple[int, Any]]] = field(default_factory=dict, repr=False)

    def add(self, kind: str, part: dict[str, Any], raw_tail: list[tuple[int, Any]]) -> None:
        """Take one block of a kind's numbers and its newest lines (bytes or records), keeping `tail` of them."""
        self._parts.setdefault(kind, []).append(part)
        kept = self._raw_tails.setdefault(kind, [])
        kept.extend(raw_tail)
        kept.sort(key=lambda item: item[0])
        del kept[:-self.tail or len(kept)]

    def finish(self) -> MetricsColumns:
        """Join the parts into one array per field, in line order, and parse the kept tails."""
        import numpy as np

        for kind, names in self.fields.items():
            parts = self._parts.get(kind, [])
            columns = {name: np.concatenate([p[name] for p in parts]) if parts else np.empty(0)
                       for name in ("line", *names)}
            columns["line"] = columns["line"].astype(np.int64)
            order = np.argsort(columns["line"], kind="stable")
            if len(order) and np.any(order[1:] < order[:-1]):
                columns = {name: values[order] for name, values in columns.items()}
            self.columns[kind] = columns
            raw = self._raw_tails.get(kind, [])
            parsed = [(line, item if isinstance(item, dict) else parse_record(item)) for line, item in raw]
            self.tails[kind] = [record for _, record in parsed if record is not None]
            self.tail_lines[kind] = [line for line, record in parsed if record is not None]
        self._parts, self._raw_tails = {}, {}
        return self


def parse_columns(np: Any, buf: Any, ends: Any, out: MetricsColumns) -> int:
    """Fold the lines of `buf` that end at `ends` into `out`; returns how many were malformed.

    A line takes the fast path when it is laid out as MetricsWriter writes the first line
    of its kind and shape: `{"t": `, then `, "kind": "<kind>", "step": ` at its first
    comma, the same number of commas, the wanted keys right after the expected commas, a
    closing brace, and wanted values that parse as JSON numbers (or null). Only those
    values are gathered, into one JSON array per block, and parsed in one call.
    """
    starts = np.concatenate(([0], ends[:-1] + 1))
    base, malformed = out.lines, 0
    out.lines += len(ends)
    commas = np.flatnonzero(buf[:ends[-1]] == 44)
    first_comma = np.searchsorted(commas, starts)
    comma_count = np.searchsorted(commas, ends) - first_comma
    shaped = (comma_count >= 2) & (buf[np.maximum(ends - 1, 0)] == 125) & _matches(np, buf, starts, b'{"t": ')
    taken = np.zeros(len(ends), dtype=bool)
    comma_at = commas[np.minimum(first_comma, len(commas) - 1)] if len(commas) else starts
    line_bytes = lambda row: buf[starts[row]:ends[row]].tobytes()  # noqa: E731
    for kind, names in out.fields.items():
        candidate = shaped & _matches(np, buf, comma_at, f', "kind": "{kind}", "step": '.encode())
        for count in np.unique(comma_count[candidate]).tolist():
            rows = np.flatnonzero(candidate & (comma_count == count))
            keys = _keys(line_bytes(rows[0]))
            if keys[:3] != ["t", "kind", "step"] or len(keys) != count + 1:
                continue
            checked = [name for name in CHECKED_FIELDS if name in keys]  # what makes a record well-formed
            wanted = sorted((keys.index(name), name) for name in {*names, *checked} if name in keys)
            ok = np.ones(len(rows), dtype=bool)
            value_starts, value_ends = [], []
            for index, name in wanted:
                key = f'"{name}": '.encode()
                if index == 0:
                    value_starts.append(starts[rows] + 1 + len(key))
                else:
                    before = commas[first_comma[rows] + index - 1]
                    if index > 2:  # the kind pattern already checked `"step": `
                        ok &= _matches(np, buf, before + 2, key)
                    value_starts.append(before + 2 + len(key))
                value_ends.append(commas[first_comma[rows] + index] if index < count else ends[rows] - 1)
            ok_index = np.flatnonzero(ok)
            rows = rows[ok_index]
            if not len(rows):
                continue
            value_starts = np.stack([v[ok_index] for v in value_starts], axis=1)
            value_ends = np.stack([v[ok_index] for v in value_ends], axis=1)
            values = _gather_numbers(np, buf, value_starts, value_ends)
            if values is None:
                continue
            order = [name for _, name in wanted]
            # the rule of records.well_formed: an integer step, a finite loss; the others go the slow way
            valid = np.ones(len(rows), dtype=bool)
            for name in checked:
                at = order.index(name)
                valid &= np.isfinite(values[:, at]) & _only(np, buf, value_starts[:, at], value_ends[:, at],
                                                            CHECKED_FIELDS[name])
            rows, values = rows[valid], values[valid]
            if not len(rows):
                continue
            part = {"line": (base + rows).astype(np.float64)}
            for name in names:
                part[name] = values[:, order.index(name)] if name in order else np.full(len(rows), np.nan)
            tail_rows = rows[-out.tail:].tolist() if out.tail else []
            out.add(kind, part, [(base + row, line_bytes(row)) for row in tail_rows])
            taken[rows] = True
    for row in np.flatnonzero(~taken).tolist():
        line = line_bytes(row)
        if not line.strip():
            continue
        record = parse_record(line)
        if record is None:
            malformed += 1
            continue
        kind = record["kind"]
        if kind in out.fields:
            part = {"line": np.array([float(base + row)])}
            part.update({name: np.array([as_float(record.get(name))]) for name in out.fields[kind]})
            out.add(kind, part, [(base + row, record)])
        elif kind not in out.drop:
            out.records.append(record)
            out.record_lines.append(base + row)
    return malformed


def _keys(line: bytes) -> list[str]:
    """The keys of the JSON object on `line`, in order ([] when it is not one): a shape's template."""
    try:
        decoded = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    return list(decoded) if isinstance(decoded, dict) else []


def _only(np: Any, buf: Any, value_starts: Any, value_ends: Any, allowed: bytes) -> Any:
    """Per value buf[start:end], whether every byte of it is one of `allowed`."""
    lengths = value_ends - value_starts
    width = -(-(int(lengths.max()) if len(lengths) else 1) // 8) * 8 or 8
    table = np.zeros(256, dtype=bool)
    table[np.frombuffer(allowed, dtype=np.uint8)] = True
    text = _windows(np, buf, value_starts, width)
    inside = np.arange(width) < lengths[:, None]
    return np.all(table[text] | ~inside, axis=1)


def _windows(np: Any, buf: Any, at: Any, width: int) -> Any:
    """Rows of `width` bytes of `buf` from each offset in `at` (a copy).

    `buf` is seen as overlapping `width`-byte records, one per byte offset, so the gather
    is one memcpy per row instead of numpy walking a 2-D index byte by byte.
    """
    records = np.ndarray(shape=(len(buf) - width,), dtype=np.dtype((np.void, width)), buffer=buf,
                         strides=(1,))
    return records[at].view(np.uint8).reshape(len(at), width)


def _matches(np: Any, buf: Any, at: Any, pattern: bytes) -> Any:
    """Whether `pattern` sits at each offset `at` of `buf`, compared eight bytes at a time."""
    width = -(-len(pattern) // 8) * 8
    padded = np.zeros(width, dtype=np.uint8)
    padded[:len(pattern)] = np.frombuffer(pattern, dtype=np.uint8)
    mask = np.zeros(width, dtype=np.uint8)
    mask[:len(pattern)] = 255
    words = _windows(np, buf, np.asarray(at), width).view(np.uint64)
    return ~np.any((words ^ padded.view(np.uint64)) & mask.view(np.uint64), axis=1)


def _gather_numbers(np: Any, buf: Any, value_starts: Any, value_ends: Any) -> Any:
    """The values at buf[start:end] (rows x fields) as float64, or None if any is not a number.

    Each value's text is cut out in a fixed-width window, padded with spaces and ended with
    a comma, and all of them are parsed as one JSON array in a single call (orjson when
    installed; it refuses NaN and Infinity, so json then).
    """
    lengths = (value_ends - value_starts).ravel()
    if not len(lengths) or lengths.min() < 1 or lengths.max() >= BLOCK_PAD:
        return None
    width = -(-(int(lengths.max()) + 1) // 8) * 8
    text = _windows(np, buf, value_starts.ravel(), width)
    columns = np.arange(width)
    text = np.where(columns < lengths[:, None], text, np.uint8(32))
    text[np.arange(len(lengths)), lengths] = 44
    text = text.ravel()
    text[len(text) - width + int(lengths[-1])] = 93
    data = b"[" + text.tobytes()
    values = None
    for loads in _array_loaders():
        try:
            values = loads(data)
            break
        except ValueError:
            continue
    if values is None or len(values) != len(lengths):
        return None
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    return array.reshape(value_starts.shape) if array.ndim == 1 else None


def _array_loaders() -> list[Any]:
    try:
        import orjson
    except ImportError:
        return [json.loads]
    return [orjson.loads, json.loads]

