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

    def _items(self, segment: Segment) -> list[tuple[int, int, str, Any]]:
        """(step, order, kind, payload) of a segment, in step order: restarts first at their step."""
        import numpy as np

        items: list[tuple[int, int, str, Any]] = []
        for step, wall, kept in segment.restarts:
            items.append((step, 0, "start", {"t": wall, "kind": "start", "step": step, "resumed_from": kept,
                                             "restart": True}))
        for kind, tag in self._kind_tags().items():
            if tag is not None and tag in segment.points:
                steps, walls, values = segment.points[tag]
                items.append((int(steps[0]) if len(steps) else 0, 1, kind, (np.asarray(steps), walls, values, tag)))
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
        for record in pictures.values():
            if "path" not in record and "mel" in record:
                record["path"] = record["mel"]
        for step, record in sorted(pictures.items()):
            items.append((step, 2, "alignment", record))
        return sorted(items, key=lambda item: (item[0], item[1]))

    def _kind_tags(self) -> dict[str, str | None]:
        """The tags read as `train` and `val` records, chosen once each is logged, never switched after.

        `val` is the watched tag (with no stand-in: a train tag is never read as `val` while the
        validation tag is still to come); where users watch a train loss for the verdict (RVC's
        `loss/g/total`), `val` is the tag they read minima from (`loss/g/mel`), so the two differ.
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
        """The new points of the train and watched tags as `train` and `val` records, restarts as `start`
        records and pictures as `alignment` records, in step order."""
        records: list[dict[str, Any]] = []
        for _, _, kind, payload in self._items(self.poll()):
            if isinstance(payload, dict):
                records.append(payload)
                continue
            steps, walls, values, tag = payload
            records.extend({"t": float(w), "kind": kind, "step": int(s), "loss": float(v), "tag": tag}
                           for s, w, v in zip(steps.tolist(), walls.tolist(), values.tolist()))
        records.sort(key=lambda r: (r["step"], r["kind"] != "start"))
        return records

    def read_new_columns(self, fields: dict[str, tuple[str, ...]], tail: int = 50,
                         drop: frozenset[str] = frozenset()) -> MetricsColumns:
        """Like `MetricsReader.read_new_columns`: `train` and `val` as arrays (`step`, `loss`, `t`; other
        fields NaN), the rest as records, numbered in step order."""
        import numpy as np

        result = MetricsColumns(fields, tail, drop)
        line = 0
        for _, _, kind, payload in self._items(self.poll()):
            if isinstance(payload, dict):
                if kind not in drop:
                    result.records.append(payload)
                    result.record_lines.append(line)
                line += 1
                continue
            steps, walls, values, tag = payload
            count = len(steps)
            if kind in fields:
                lines = np.arange(line, line + count, dtype=np.float64)
                named = {"step": steps.astype(np.float64), "loss": values, "t": walls}
                part = {"line": lines}
                part.update({name: named.get(name, np.full(count, np.nan)) for name in fields[kind]})
                first = max(0, count - tail) if tail else count
                raw_tail = [(line + k, {"t": float(walls[k]), "kind": kind, "step": int(steps[k]),
                                        "loss": float(values[k]), "tag": tag}) for k in range(first, count)]
                result.add(kind, part, raw_tail)
            line += count
        result.lines = line
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
