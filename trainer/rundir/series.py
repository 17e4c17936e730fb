"""Every logged series of a run: the numeric fields of its train and val records as arrays.

`voxtop metrics RUN` writes them for use elsewhere (TensorBoard's CSV download). The records
are read as columns (`MetricsReader.read_new_columns`, no Python object per record) under
the resume rule: a record is superseded by a later resume from a step below its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from trainer.rundir.names import METRICS_FILE
from trainer.rundir.queries import TAIL_BYTES
from trainer.rundir.records import parse_record, resumed_from_step

if TYPE_CHECKING:
    from trainer.rundir.source import RunSource

#: Record kinds whose numeric fields are series.
SERIES_KINDS = ("train", "val")
#: Numeric fields that are the axes of every series, not series themselves.
AXIS_FIELDS = ("step", "t")
HEAD_BYTES = 65_536  # the start of a run, read to find fields logged only early on


@dataclass
class MetricSeries:
    """One series: `kind/field`, its steps, the record times and the values (finite points only)."""

    name: str
    steps: Any
    times: Any
    values: Any

    def as_json(self) -> dict[str, Any]:
        return {"step": [int(s) for s in self.steps.tolist()], "wall_time": self.times.tolist(),
                "value": self.values.tolist()}


@dataclass
class RunSeries:
    """A run's series by name, in kind then field order."""

    run: str
    series: dict[str, MetricSeries] = field(default_factory=dict)


def numeric_fields(records: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    """The number fields of the train and val records given, per kind (axes left out)."""
    found: dict[str, set[str]] = {}
    for record in records:
        kind = record.get("kind")
        if kind in SERIES_KINDS:
            names = {key for key, value in record.items()
                     if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in AXIS_FIELDS}
            found.setdefault(str(kind), set()).update(names)
    return found


def _head_records(source: RunSource) -> list[dict[str, Any]]:
    path = source.path / METRICS_FILE  # another trainer's folder has none: its tail alone tells
    try:
        with open(path, "rb") as handle:
            data = handle.read(HEAD_BYTES)
    except OSError:
        return []
    lines = data.split(b"\n")[:-1]  # the last one may be cut
    return [record for record in map(parse_record, lines) if record is not None]


def wanted_fields(found: dict[str, set[str]], wanted: Iterable[str] | None) -> dict[str, list[str]]:
    """The fields to read per kind: all found, or those `wanted` names (`loss`: every kind's; `val/loss`: one)."""
    chosen: dict[str, list[str]] = {}
    names = list(wanted) if wanted else None
    for kind in SERIES_KINDS:
        for name in sorted(found.get(kind, ())):
            if names is None or name in names or f"{kind}/{name}" in names:
                chosen.setdefault(kind, []).append(name)
    if names is not None:  # asked for by name, but not seen in the records sampled: read it anyway
        for name in names:
            kind, _, field_name = name.rpartition("/")
            if kind in SERIES_KINDS and field_name not in chosen.get(kind, []):
                chosen.setdefault(kind, []).append(field_name)
    return chosen


def read_series(source: RunSource, wanted: Iterable[str] | None = None) -> RunSeries:
    """The run's series (all, or the `wanted` ones), each with its steps and record times.

    The fields are found in the first and last 64 KB of the run's records, so a field logged
    only in the middle of a run is read when named in `wanted`.
    """
    import numpy as np

    tail, _ = source.tail(TAIL_BYTES)
    found = numeric_fields([*_head_records(source), *tail])
    chosen = wanted_fields(found, wanted)
    fields = {kind: ("step", "t", *names) for kind, names in chosen.items()}
    result = RunSeries(source.name)
    if not fields:
        return result
    unwanted = frozenset(kind for kind in SERIES_KINDS if kind not in fields)  # skipped, not parsed one by one
    new = source.metrics_reader().read_new_columns(fields, tail=0, drop=unwanted)
    resumes = [(line, resumed_from_step(r)) for line, r in zip(new.record_lines, new.records)
               if resumed_from_step(r) is not None]
    for kind, names in chosen.items():
        columns = new.columns[kind]
        keep = np.isfinite(columns["step"])
        if resumes:  # superseded by a later resume from below its step
            resume_lines = np.asarray([line for line, _ in resumes], dtype=np.int64)
            lowest_after = np.minimum.accumulate(np.asarray([s for _, s in resumes], dtype=np.float64)[::-1])[::-1]
            bound = np.append(lowest_after, np.inf)[np.searchsorted(resume_lines, columns["line"], side="right")]
            keep &= columns["step"] <= bound
        for name in names:
            values = columns[name]
            mask = keep & np.isfinite(values)
            result.series[f"{kind}/{name}"] = MetricSeries(f"{kind}/{name}", columns["step"][mask],
                                                           columns["t"][mask], values[mask])
    return result
