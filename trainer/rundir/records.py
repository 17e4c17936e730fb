"""The one record parser: what a well-formed metrics record is, and its fields as numbers.

Every reader of metrics.jsonl (the record reader, the numpy column reader, the index, tails,
the trainer's resume) follows `parse_record`, so a line is well-formed or malformed for all
of them alike: a JSON object with a string `kind`, an integer `step`, if it has a `loss` a
finite one, and the fields of its kind that readers use as text (a checkpoint's `tags`, an
event's `message`, ...) of the type they expect; anything else is counted and skipped. The resume rule (`current_history`) lives
here too: which records of an earlier session a resume supersedes.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable


def parse_record(line: bytes | str) -> dict[str, Any] | None:
    """The record on one line of metrics.jsonl, or None when the line is malformed (`well_formed`)."""
    try:
        record = _fast_loads(line)
    except ValueError:  # NaN and Infinity, integers past 64 bits, deep nesting, junk: json decides
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):  # junk, or `[[[[...` nested too deep
            return None
    return record if well_formed(record) else None


def _json_loads(line: bytes | str) -> Any:
    raise ValueError("no fast parser")


try:  # orjson parses a record several times faster; it refuses what only json accepts (NaN, Infinity)
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover
    _fast_loads = _json_loads


#: Per kind, the fields readers use as text: when present, each must be a string (or null).
TEXT_FIELDS = {
    "checkpoint": ("path",),
    "alignment": ("path", "mel", "wav", "text", "checkpoint"),
    "sample": ("mel", "wav", "text", "checkpoint"),
    "event": ("level", "code", "message"),
    "end": ("reason",),
}
#: Per kind, the fields readers use as a list of strings: when present, a list of strings (or null).
TEXT_LIST_FIELDS = {"checkpoint": ("tags",)}


def well_formed(record: Any) -> bool:
    """Whether a decoded line is a record: an object with a string `kind`, an integer `step`,
    when it has a `loss` a finite number there (the trainer never logs another), and its kind's
    text fields strings and tag lists lists of strings (`TEXT_FIELDS`, `TEXT_LIST_FIELDS`)."""
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        return False
    step = record.get("step")
    if isinstance(step, bool) or not isinstance(step, int):
        return False
    if "loss" in record and finite(record["loss"]) is None:
        return False
    kind = record["kind"]
    if any(not isinstance(record.get(name), (str, type(None))) for name in TEXT_FIELDS.get(kind, ())):
        return False
    for name in TEXT_LIST_FIELDS.get(kind, ()):
        value = record.get(name)
        if value is not None and not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
            return False
    return True


def as_float(value: Any) -> float:
    """A field as float64 for the column arrays: NaN where it is missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return float("nan")


def finite(value: Any) -> float | None:
    """A field that is a finite JSON number, as float; None otherwise (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def current_history(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the run's current history, in file order.

    A trainer killed after its newest checkpoint went on logging steps that its resume
    repeats; the resume's `start` record (`resumed_from` = S) supersedes every earlier
    record past step S. Followers apply the same rule as records arrive.
    """
    history: list[dict[str, Any]] = []
    for record in records:
        resumed_from = resumed_from_step(record)
        if resumed_from is not None:
            history = [r for r in history if r.get("step", 0) <= resumed_from]
        history.append(record)
    return history


def resumed_from_step(record: dict[str, Any]) -> int | None:
    """S when `record` is a resume's `start` (which supersedes what was logged past S before it), else None."""
    if record.get("kind") != "start":
        return None
    resumed_from = record.get("resumed_from")
    return resumed_from if isinstance(resumed_from, int) and not isinstance(resumed_from, bool) else None
