"""Read-through health records ("does it speak?") as readers take them: checked, bounded, never fatal.

The trainer appends one `health` record per checkpoint to metrics.jsonl, some seconds after the
checkpoint itself (a background worker renders held-out sentences free-running; see
trainer/health.py). Everything that reads them (Monitor, `voxtop checkpoints`, the recommended
checkpoint, `voxtop export`) goes through `parse_health`, which returns None for a record it
cannot trust (missing or out-of-range counts, wrong types), so a damaged or foreign record reads
as "not computed" and never as a crash. Strings are cut and stripped of control characters,
and only the first MAX_ITEMS sentences are kept, so a huge record costs bounded memory.

Standard library only: the TUI imports it without torch or textual.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Collection, Iterable

from trainer.rundir.records import finite

MAX_ITEMS = 64  # sentences kept per record; the trainer renders about a dozen
MAX_TEXT_CHARS = 300  # longer texts (sentence, what was heard) are cut with an ellipsis
STOPS = ("gate", "attention", "limit")


@dataclass(frozen=True)
class HealthItem:
    """One held-out sentence rendered free-running, and what came of it."""

    text: str
    reached_end: bool | None
    stopped: bool | None
    stop: str | None  # "gate", "attention" (fallback stop) or "limit" (ran to the decoding limit)
    length_ratio: float | None
    monotonicity: float | None
    heard: str | None  # free recognition, or None without a recogniser
    understood: bool | None  # the recogniser's forced choice picked this sentence
    wer: float | None
    wav: str | None  # relative to the run folder


@dataclass(frozen=True)
class HealthSummary:
    """The read-through health of one checkpoint: counts out of `sentences`, means, and the sentences."""

    step: int
    sentences: int
    reached_end: int
    stopped: int
    monotonic: int
    read_through: int  # reached the end, stopped in time and stayed monotonic: "reads to the end"
    understood: int | None  # None: no recogniser for the language
    wer: float | None
    monotonicity: float | None
    length_ratio: float | None
    diagonality: float | None
    recogniser: str | None
    checkpoint: str | None
    elapsed_s: float | None
    items: tuple[HealthItem, ...] = ()

    @property
    def reads_fraction(self) -> float:
        """Share of the sentences read to the end (0..1)."""
        return self.read_through / self.sentences

    @property
    def understood_fraction(self) -> float | None:
        """Share of the sentences the recogniser understood (0..1), None without a recogniser."""
        return None if self.understood is None else self.understood / self.sentences

    def reads_text(self) -> str:
        """`10/12`: sentences read to the end, out of those rendered."""
        return f"{self.read_through}/{self.sentences}"

    def understood_text(self) -> str:
        """`3/12`, or `-` without a recogniser."""
        return "-" if self.understood is None else f"{self.understood}/{self.sentences}"

    def as_json(self, items: bool = True) -> dict[str, Any]:
        """The checked figures as plain JSON values (what `voxtop checkpoints --json` prints)."""
        found = asdict(self)
        found["items"] = [asdict(item) for item in self.items] if items else None
        if not items:
            del found["items"]
        return found


def _count(value: Any, most: int) -> int | None:
    """An int in 0..most (bools are not counts), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        return None
    return value


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def clean_text(value: Any, limit: int = MAX_TEXT_CHARS) -> str | None:
    """A string from disk made safe to show: control characters become spaces, runs of space one, cut to `limit`."""
    if not isinstance(value, str):
        return None
    head = value[:limit * 4]
    text = " ".join((head if head.isprintable() else "".join(ch if ch.isprintable() else " " for ch in head)).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _item(raw: Any) -> HealthItem | None:
    if not isinstance(raw, dict):
        return None
    text = clean_text(raw.get("text"))
    if text is None:
        return None
    stop = raw.get("stop")
    return HealthItem(text=text, reached_end=_flag(raw.get("reached_end")), stopped=_flag(raw.get("stopped")),
                      stop=stop if stop in STOPS else None, length_ratio=finite(raw.get("length_ratio")),
                      monotonicity=finite(raw.get("monotonicity")), heard=clean_text(raw.get("heard")),
                      understood=_flag(raw.get("understood")), wer=finite(raw.get("wer")),
                      wav=clean_text(raw.get("wav"), 200))


def parse_health(record: Any, items: bool = True) -> HealthSummary | None:
    """A `health` record checked field by field; None when its step or counts cannot be trusted.

    The counts (`sentences` >= 1, `reached_end`, `stopped`, `monotonic`, `read_through` in
    0..sentences) are required; `understood` may be null or missing (no recogniser) but not of
    another type; a bad mean, text or sentence reads as unknown, not as a bad record. With
    `items=False` the sentences are left out (a listing of thousands of checkpoints needs only counts).
    """
    if not isinstance(record, dict):
        return None
    step = record.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        return None
    sentences = record.get("sentences")
    if isinstance(sentences, bool) or not isinstance(sentences, int) or sentences < 1:
        return None
    counts = {name: _count(record.get(name), sentences)
              for name in ("reached_end", "stopped", "monotonic", "read_through")}
    if any(value is None for value in counts.values()):
        return None
    understood = record.get("understood")
    if understood is not None:
        understood = _count(understood, sentences)
        if understood is None:
            return None
    raw_items = record.get("items") if items else None
    kept: list[HealthItem] = []
    if isinstance(raw_items, list):
        for raw in raw_items[:MAX_ITEMS]:
            item = _item(raw)
            if item is not None:
                kept.append(item)
    return HealthSummary(step=step, sentences=sentences, understood=understood, wer=finite(record.get("wer")),
                         monotonicity=finite(record.get("monotonicity")),
                         length_ratio=finite(record.get("length_ratio")),
                         diagonality=finite(record.get("diagonality")),
                         recogniser=clean_text(record.get("recogniser"), 80),
                         checkpoint=clean_text(record.get("checkpoint"), 200),
                         elapsed_s=finite(record.get("elapsed_s")), items=tuple(kept),
                         **counts)  # type: ignore[arg-type]


def health_by_step(records: Iterable[dict[str, Any]], existing: Collection[int] | None = None,
                   items: bool = True) -> dict[int, HealthSummary]:
    """The newest trustworthy health record of each checkpoint, under the resume rule.

    A resume's `start` record (`resumed_from` = S) supersedes the health of checkpoints past S,
    as `trainer.rundir.current_history` reads records; `existing` keeps only those steps.
    """
    found: dict[int, HealthSummary] = {}
    for record in records:
        kind = record.get("kind")
        if kind == "start":
            resumed_from = record.get("resumed_from")
            if isinstance(resumed_from, int) and not isinstance(resumed_from, bool):
                found = {step: health for step, health in found.items() if step <= resumed_from}
        elif kind == "health":
            health = parse_health(record, items)
            if health is not None and (existing is None or health.step in existing):
                found[health.step] = health
    return found


def health_line(health: HealthSummary) -> str:
    """`step 300: reads to the end 10/12 · stops 10/12 · understood 3/12 · WER 0.71`."""
    n = health.sentences
    parts = [f"step {health.step}: reads to the end {health.read_through}/{n}", f"stops {health.stopped}/{n}",
             f"understood {health.understood_text()}"]
    if health.wer is not None:
        parts.append(f"WER {health.wer:.2f}")
    return " · ".join(parts)


def heard_lines(health: HealthSummary, count: int) -> list[str]:
    """Up to `count` lines on what the recogniser heard, sentences it misheard first.

    Without a recogniser (or nothing heard): one line of the attention figures instead.
    """
    heard = [item for item in health.items if item.heard is not None]
    if not heard:
        n = health.sentences
        parts = [f"monotonic {health.monotonic}/{n}", f"reach the end {health.reached_end}/{n}"]
        if health.length_ratio is not None:
            parts.append(f"length x{health.length_ratio:.2f}")
        if health.diagonality is not None:
            parts.append(f"diagonality {health.diagonality:.2f}")
        parts.append("no recogniser" if health.recogniser is None else f"nothing heard ({health.recogniser})")
        return [" · ".join(parts)][:max(0, count)]
    heard.sort(key=lambda item: item.understood is True)  # stable: misheard ones first, in order
    lines = []
    for item in heard[:max(0, count)]:  # the verdict first: a narrow screen cuts the end of the line
        mark = "understood" if item.understood else "not understood" if item.understood is False else "heard"
        said = f"\u201c{item.heard}\u201d" if item.heard else "nothing"
        lines.append(f"{mark}: heard {said} for \u201c{item.text}\u201d")
    return lines
