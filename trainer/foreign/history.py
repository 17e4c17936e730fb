"""A foreign run's logged numbers as voxtop's readers take them: per-tag series, and records.

`ForeignMetricsReader` is a `MetricsReader` for a folder written by another trainer: the same
`read_new()` (records as dicts) and `read_new_columns()` (arrays), each call costing only what the
trainer wrote since the last. The tag a user of that trainer watches becomes the `val` series, the
tag shown as its train loss the `train` series; every tag is kept in `series` for the charts; a
restart that logs again from an earlier step comes as a `start` record with `resumed_from`, as in
voxtop's own runs; images and audio clips come as `alignment` records whose `path`, `mel` and `wav`
name them by tag (`RunSource.picture_path` makes the file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from trainer.foreign.feeds import Chunk
from trainer.foreign.layouts import Layout, choose_tag
from trainer.foreign.tbevents import EventBlob
from trainer.rundir.columns import MetricsColumns
from trainer.rundir.reader import MetricsReader

#: Where an `alignment` record's picture or clip is: `<BLOB_MARK><kind>:<tag>@<step>`, resolved by the source.
BLOB_MARK = "tensorboard:"


@dataclass
class TagSeries:
    """One tag's points so far, in amortised-doubling arrays (steps, wall times, values)."""

    steps: Any = None
    walls: Any = None
    values: Any = None
    count: int = 0
    origin: str = ""

    def extend(self, steps: Any, walls: Any, values: Any) -> None:
        import numpy as np

        need = self.count + len(steps)
        if self.steps is None or need > len(self.steps):
            capacity = max(need, 2 * (len(self.steps) if self.steps is not None else 512))
            grown = [np.empty(capacity, dtype=d) for d in (np.int64, np.float64, np.float64)]
            if self.steps is not None:
                for new, old in zip(grown, (self.steps, self.walls, self.values)):
                    new[:self.count] = old[:self.count]
            self.steps, self.walls, self.values = grown
        self.steps[self.count:need] = steps
        self.walls[self.count:need] = walls
        self.values[self.count:need] = values
        self.count = need

    def keep_below(self, step: int) -> None:
        """Forget the points at or past `step` (a restart logged them again)."""
        if self.count:
            keep = self.steps[:self.count] < step
            kept = int(keep.sum())
            for array in (self.steps, self.walls, self.values):
                array[:kept] = array[:self.count][keep]
            self.count = kept

    def view(self) -> tuple[Any, Any, Any]:
        """(steps, wall times, values) so far."""
        import numpy as np

        if self.steps is None:
            return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
        return self.steps[:self.count], self.walls[:self.count], self.values[:self.count]

    def last_step(self) -> int | None:
        return int(self.steps[self.count - 1]) if self.count else None


@dataclass
class Segment:
    """What one read brought: the new points per tag, restarts (a tag, its first step again), pictures."""

    points: dict[str, tuple[Any, Any, Any]] = field(default_factory=dict)
    restarts: list[tuple[int, float, int]] = field(default_factory=list)
    """(first step logged again, its wall time, the last step kept before it)."""
    blobs: list[EventBlob] = field(default_factory=list)
    reset: bool = False


class ForeignHistory:
    """Every tag's series of a foreign run, fed chunk by chunk; restarts supersede what they log again."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.series: dict[str, TagSeries] = {}
        self.blobs: dict[tuple[str, int], EventBlob] = {}  # (tag, step) -> the newest image or clip

    def add(self, chunks: list[Chunk]) -> Segment:
        """Fold new chunks in; what they added, for the records a reader returns."""
        segment = Segment()
        for chunk in chunks:
            if chunk.reset:
                self.series = {tag: s for tag, s in self.series.items() if s.origin != chunk.origin}
                segment.reset = True
            restart: tuple[int, float, int] | None = None  # one per file: its lowest step logged again
            for tag, (steps, walls, values) in chunk.scalars.items():
                if not len(steps):
                    continue
                series = self.series.setdefault(tag, TagSeries(origin=chunk.origin))
                last = series.last_step()
                first = int(steps[0])
                if series.origin != chunk.origin and last is not None and first <= last:
                    series.keep_below(first)
                    kept = series.last_step()
                    found = (first, float(walls[0]), first - 1 if kept is None else kept)
                    restart = found if restart is None else min(restart, found)
                series.origin = chunk.origin
                series.extend(steps, walls, values)
                held = segment.points.get(tag)
                if held is None:
                    segment.points[tag] = (steps, walls, values)
                else:
                    import numpy as np

                    segment.points[tag] = tuple(np.concatenate([a, b]) for a, b in zip(held, (steps, walls, values)))
            if restart is not None:
                segment.restarts.append(restart)
            for blob in chunk.blobs:
                self.blobs[(blob.tag, blob.step)] = blob
                segment.blobs.append(blob)
        return segment

    def tags(self) -> list[str]:
        return sorted(self.series)

    def train_tag(self) -> str | None:
        return choose_tag(self.layout.watched.train, self.tags(), "train")

    def verdict_tag(self) -> str | None:
        return choose_tag(self.layout.watched.verdict, self.tags(), "val") or self.train_tag()

    def minima_tag(self) -> str | None:
        return choose_tag(self.layout.watched.minima, self.tags(), "val") or self.verdict_tag()

    def last_step(self) -> int:
        return max((s.last_step() or 0 for s in self.series.values()), default=0)

    def step_at_time(self, wall_time: float) -> int | None:
        """The newest step logged at or before `wall_time` (the train tag's), None before the first."""
        import numpy as np

        tag = self.train_tag() or next(iter(self.series), None)
        if tag is None:
            return None
        steps, walls, _ = self.series[tag].view()
        at = int(np.searchsorted(walls, wall_time, side="right"))
        return int(steps[at - 1]) if at else None


class ForeignMetricsReader(MetricsReader):
    """`MetricsReader` over another trainer's logs (see the module docstring); `series` holds every tag."""

    def __init__(self, layout: Layout, feed_factory: Callable[[], Any]):
        super().__init__(layout.folder)
        self.layout = layout
        self._feed = feed_factory()
        self.history = ForeignHistory(layout)
        self._train: str | None = None
        self._val: str | None = None

    @property
    def corrupt(self) -> int:
        return int(getattr(self._feed, "corrupt", 0))

    def poll(self) -> Segment:
        """Read what the trainer wrote since the last call into `history`."""
        segment = self.history.add(self._feed.read_new())
        self.malformed = self.corrupt
        return segment

    def _kind_of(self, tag: str) -> str:
        """`val` for the watched tag and the tags of an evaluation (`EvalStats/...`, `val_...`), else `train`."""
        low = tag.lower()
        evaluation = low.startswith(("eval", "val", "test")) or "/eval" in low or "_val" in low or "val_" in low
        return "val" if tag == self._val or evaluation else "train"

    def _rows(self, segment: Segment) -> dict[str, tuple[Any, Any, dict[str, Any]]]:
        """Per kind, the rows of a segment: every step any of its tags logged (sorted), the newest wall
        time at each, and per tag its values at those steps (NaN where it logged none)."""
        import numpy as np

        main = self._kind_tags()
        by_kind: dict[str, list[str]] = {"train": [], "val": []}
        for tag in segment.points:
            by_kind[self._kind_of(tag)].append(tag)
        rows = {}
        for kind, tags in by_kind.items():
            if not tags:
                continue
            steps = np.unique(np.concatenate([segment.points[tag][0] for tag in tags]))
            walls = np.full(len(steps), -np.inf)
            columns = {}
            for tag in tags:
                tag_steps, tag_walls, tag_values = segment.points[tag]
                at = np.searchsorted(steps, tag_steps)
                column = np.full(len(steps), np.nan)
                column[at] = tag_values  # a step logged twice (a restart read in the same call): the later wins
                columns[tag] = column
                np.maximum.at(walls, at, tag_walls)
            loss = columns.get(main[kind]) if main[kind] is not None else None
            columns["loss"] = loss if loss is not None else np.full(len(steps), np.nan)
            rows[kind] = (steps, walls, columns)
        return rows

    def _records(self, segment: Segment) -> list[tuple[int, int, dict[str, Any]]]:
        """(step, order, record) of a segment's restarts (order 0: before the rows of their step) and
        pictures (order 2: after them), as `start` and `alignment` records."""
        found: list[tuple[int, int, dict[str, Any]]] = []
        for step, wall, kept in segment.restarts:
            found.append((step, 0, {"t": wall, "kind": "start", "step": step, "resumed_from": kept, "restart": True}))
        pictures: dict[int, dict[str, Any]] = {}
        for blob in segment.blobs:
            record = pictures.setdefault(blob.step, {"t": blob.wall_time, "kind": "alignment", "step": blob.step})
            ref = f"{BLOB_MARK}{blob.tag}@{blob.step}"
            if blob.kind == "audio":
                record.setdefault("wav", ref)
                continue
            key = "path" if "align" in blob.tag.lower() else "mel"
            held = blob_ref(record.get(key))
            if held is None or ("gen" in blob.tag.lower() and "gen" not in held[0].lower()):
                record[key] = ref  # RVC's generated mel (slice/mel_gen) before the original
        for step, record in sorted(pictures.items()):
            if "path" not in record and "mel" in record:
                record["path"] = record["mel"]
            found.append((step, 2, record))
        return found

    def _numbered(self, segment: Segment) -> tuple[dict[str, tuple[Any, Any, dict[str, Any], Any]],
                                                   list[tuple[int, dict[str, Any]]], int]:
        """The segment's rows per kind with their line numbers, its records with theirs, and the line count:
        everything numbered in step order (a restart before the rows of its step, pictures after)."""
        import numpy as np

        rows = self._rows(segment)
        records = self._records(segment)
        keys = [np.array([step * 4 + order for step, order, _ in records], dtype=np.int64)]
        kinds = list(rows)
        for kind in kinds:
            keys.append(rows[kind][0].astype(np.int64) * 4 + 1)
        joined = np.concatenate(keys) if keys else np.empty(0, dtype=np.int64)
        order = np.argsort(joined, kind="stable")
        lines = np.empty(len(joined), dtype=np.int64)
        lines[order] = np.arange(len(joined))
        numbered_records = [(int(lines[k]), record) for k, (_, _, record) in enumerate(records)]
        at = len(records)
        numbered_rows = {}
        for kind in kinds:
            steps, walls, columns = rows[kind]
            numbered_rows[kind] = (steps, walls, columns, lines[at:at + len(steps)])
            at += len(steps)
        return numbered_rows, numbered_records, len(joined)

    @staticmethod
    def _record(kind: str, step: int, wall: float, values: dict[str, float], tag: str | None) -> dict[str, Any]:
        import math

        record: dict[str, Any] = {"t": wall, "kind": kind, "step": step}
        record.update({name: value for name, value in values.items() if math.isfinite(value)})
        if tag is not None:
            record["tag"] = tag
        return record

    def _kind_tags(self) -> dict[str, str | None]:
        """The tags read as the `loss` of `train` and `val` records, chosen once each is logged, never switched.

        `val` is the watched tag (with no stand-in: a train tag is never read as `val` while the
        validation tag is still to come); where users watch a train loss for the verdict (RVC's
        `loss/g/total`), `val` is the tag they read minima from (`loss/g/mel`), so the two differ.
        Every other tag is a field of its kind's records under its own name (`train` `loss/g/kl`).
        """
        history, watched = self.history, self.layout.watched
        if self._train is None:
            self._train = history.train_tag()
        if self._val is None:
            val = choose_tag(watched.verdict, history.tags(), "val")
            if val is not None and val == self._train:
                val = choose_tag(watched.minima, history.tags(), "val")
            self._val = val if val != self._train else None
        return {"train": self._train, "val": self._val}

    def read_new(self) -> list[dict[str, Any]]:
        """What the trainer logged since the last call as voxtop's records, in step order: `train` and `val`
        records (`loss` the watched tag's value, every other tag of the kind under its name), restarts as
        `start` records, pictures and clips as `alignment` records."""
        segment = self.poll()
        main = self._kind_tags()
        rows, records, count = self._numbered(segment)
        placed: list[Any] = [None] * count
        for line, record in records:
            placed[line] = record
        for kind, (steps, walls, columns, lines) in rows.items():
            names = list(columns)
            table = [column.tolist() for column in columns.values()]
            for k, (step, wall, line) in enumerate(zip(steps.tolist(), walls.tolist(), lines.tolist())):
                placed[line] = self._record(kind, step, wall, {name: table[n][k] for n, name in enumerate(names)},
                                            main[kind])
        return [record for record in placed if record is not None]

    def read_new_columns(self, fields: dict[str, tuple[str, ...]], tail: int = 50,
                         drop: frozenset[str] = frozenset()) -> MetricsColumns:
        """Like `MetricsReader.read_new_columns`: `train` and `val` rows as arrays (`step`, `t`, `loss`, any tag
        by name; NaN where a row has none), the rest as records, numbered in step order. The kept tail
        records carry every tag of their kind (its newest value of this read where the row has none), so a
        metric picker lists every tag."""
        import numpy as np

        segment = self.poll()
        main = self._kind_tags()
        rows, records, count = self._numbered(segment)
        result = MetricsColumns(fields, tail, drop)
        for kind, (steps, walls, columns, lines) in rows.items():
            if kind not in fields:
                continue
            named = {"step": steps.astype(np.float64), "t": walls, **columns}
            part = {"line": lines.astype(np.float64)}
            part.update({name: named.get(name, np.full(len(steps), np.nan)) for name in fields[kind]})
            raw_tail = []
            if tail:
                newest = {}
                for name, column in columns.items():
                    finite = np.flatnonzero(np.isfinite(column))
                    newest[name] = float(column[finite[-1]]) if len(finite) else float("nan")
                for k in range(max(0, len(steps) - tail), len(steps)):
                    values = {name: float(column[k]) if np.isfinite(column[k]) else newest[name]
                              for name, column in columns.items()}
                    raw_tail.append((int(lines[k]), self._record(kind, int(steps[k]), float(walls[k]), values,
                                                                 main[kind])))
            result.add(kind, part, raw_tail)
        for line, record in records:
            if record["kind"] not in drop:
                result.records.append(record)
                result.record_lines.append(line)
        result.lines = count
        return result.finish()


def blob_ref(ref: Any) -> tuple[str, int] | None:
    """(tag, step) of an `alignment` record's `path`/`mel`/`wav` naming an event file's image or clip."""
    if not isinstance(ref, str) or not ref.startswith(BLOB_MARK) or "@" not in ref:
        return None
    tag, _, step = ref[len(BLOB_MARK):].rpartition("@")
    try:
        return tag, int(step)
    except ValueError:
        return None


def picture_matrix(data: bytes) -> Any:
    """An encoded image (PNG, JPEG) as a 2-D float array of its brightness, bottom row first (Pillow)."""
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    return gray[::-1]


def cache_folder(run_folder: Path) -> Path:
    """Where voxtop keeps what it makes from another trainer's run (pictures as .npy, clips as .wav):
    under the user's cache, never inside that trainer's folder."""
    import hashlib
    import os

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "voxtop" / "foreign"
    digest = hashlib.sha1(str(Path(run_folder).resolve()).encode("utf-8")).hexdigest()[:16]
    return base / digest
