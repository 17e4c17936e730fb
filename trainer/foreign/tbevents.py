"""A native TensorBoard event-file reader: records, CRC32C and `Event` protos, without TensorFlow.

An event file is a sequence of records: an 8-byte little-endian length, the masked CRC32C of
those 8 bytes, the data (a serialized `Event`), and the masked CRC32C of the data. The reader
follows a file by byte offset, so each call costs only what was appended; a partial last record
(the writer is mid-write) is left for the next call, a record whose CRC does not match is counted
and skipped, never fatal.

Attaching to a long run must be quick (a million scalars in about a second), so the common case
goes through numpy with no Python object per record: records are framed by predicting the repeating
pattern of their lengths and checking it in bulk, their CRC32C is checked in bulk from tables made
with `google_crc32c` (a CRC is linear, so a record's CRC is that of the first record of its length
group with the changed bytes' contributions swapped), and the one layout every SummaryWriter uses
for a scalar (`wall_time`, `step`, one `Value` with `tag` and `simple_value`) is decoded column by
column. Every other record (images, audio, scalar tensors, long records) is decoded by protobuf
(`trainer.foreign.tbproto`). The tests check the bulk path against `google_crc32c` and protobuf.
`google_crc32c`, `protobuf` and `numpy` are imported on first use, never when the TUI starts.
"""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER_BYTES = 12  # length (8) + masked CRC of the length (4)
FOOTER_BYTES = 4  # masked CRC of the data
#: Records up to this many data bytes take the bulk path (scalars are 30 to 80 bytes).
SHORT_BYTES = 255
#: Bytes read from a file per block: bounds the reader's memory on a long file.
BLOCK_BYTES = 16 * 2**20
#: Fewer records than this in a read are decoded one by one (a follower's poll): the bulk path's numpy calls
#: cost more than protobuf for a few dozen records.
BULK_MIN_RECORDS = 256
#: Records framed one by one before the reader predicts the pattern of their lengths.
SEQUENTIAL_RECORDS = 32
#: Most records predicted at once (each prediction is checked before it is taken).
PREDICT_RECORDS = 16384
_MASK_DELTA = 0xA282EAD8
EVENT_FILE_MARK = "tfevents"


@dataclass(frozen=True)
class EventBlob:
    """An image or audio clip from an event file, still encoded (PNG/JPEG, WAV) as the writer stored it."""

    kind: str  # "image" or "audio"
    tag: str
    step: int
    wall_time: float
    data: bytes
    width: int = 0
    height: int = 0
    sample_rate: float = 0.0
    file: str = ""
    offset: int = -1
    """Where the record starts in `file`: a reader that keeps no blob data reads it again from there."""


@dataclass
class EventBatch:
    """What one read found: per scalar tag the (steps, wall times, values) arrays in file order, the
    images and audio clips, and the counts of records read and of corrupt records skipped."""

    scalars: dict[str, tuple[Any, Any, Any]] = field(default_factory=dict)
    blobs: list[EventBlob] = field(default_factory=list)
    records: int = 0
    corrupt: int = 0

    def scalar_count(self) -> int:
        """How many scalar points the batch holds."""
        return sum(len(steps) for steps, _, _ in self.scalars.values())


# --- CRC32C -----------------------------------------------------------------------------------


def _mask(crc: Any) -> Any:
    """TFRecord's masked CRC (works on ints and on uint32 arrays alike)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC32C a record stores for `data` (google_crc32c)."""
    import google_crc32c

    return _mask(google_crc32c.value(bytes(data)))


@functools.cache
def _distance_tables() -> Any:
    """tables[d][b]: how byte value b, followed by d more bytes, changes a CRC32C (d < SHORT_BYTES).

    For two messages of one length, crc(x) ^ crc(y) depends only on x ^ y and is the XOR of each
    byte's contribution; the contribution of a lone byte is read off google_crc32c, and each later
    byte shifts it through the CRC's own byte table.
    """
    import google_crc32c
    import numpy as np

    zero = google_crc32c.value(b"\0")
    table = np.array([google_crc32c.value(bytes([b])) ^ zero for b in range(256)], dtype=np.uint32)
    tables = np.empty((SHORT_BYTES, 256), dtype=np.uint32)
    tables[0] = table
    for d in range(1, SHORT_BYTES):
        previous = tables[d - 1]
        tables[d] = (previous >> np.uint32(8)) ^ table[previous & np.uint32(0xFF)]
    return tables


# --- reading a file ---------------------------------------------------------------------------


class EventFileReader:
    """Follows one event file by byte offset: `read_new()` returns what was appended since the last call.

    A file that shrank (replaced) is read again from the start; a record cut off at the end of the
    file is read once it is whole; records whose CRC does not match are counted in `corrupt`.
    """

    def __init__(self, path: Path, keep_blob_data: bool = True):
        self.path = Path(path)
        self.keep_blob_data = keep_blob_data
        self.offset = 0
        self.records = 0
        self.corrupt = 0
        self._plugins: dict[str, str] = {}  # tag -> plugin name (TensorBoard writes it with the first value)

    def read_new(self) -> EventBatch:
        """The complete records appended since the last call, decoded."""
        batch = EventBatch()
        try:
            handle = open(self.path, "rb")
        except OSError:
            return batch
        with handle:
            size = os.fstat(handle.fileno()).st_size
            if size < self.offset:
                self.offset = 0
            parts: list[EventBatch] = []
            while self.offset + HEADER_BYTES <= size:
                handle.seek(self.offset)
                data = handle.read(min(BLOCK_BYTES, size - self.offset))
                consumed, part = self._read_block(data)
                if consumed == 0:  # a record longer than a block: read it whole, if it is all there
                    (length,) = struct.unpack_from("<Q", data, 0)
                    whole = HEADER_BYTES + length + FOOTER_BYTES
                    if self.offset + whole > size:
                        break
                    handle.seek(self.offset)
                    consumed, part = self._read_block(handle.read(whole))
                    if consumed == 0:
                        break
                parts.append(part)
                self.offset += consumed
        merged = _merge(parts)
        self.records += merged.records
        self.corrupt += merged.corrupt
        return merged

    def _read_block(self, data: bytes) -> tuple[int, EventBatch]:
        """Decode the whole records at the start of `data`; returns (bytes consumed, what they held)."""
        import numpy as np

        view = np.frombuffer(data, dtype=np.uint8)
        starts, lengths, consumed, corrupt, runs = _frame(np, data, view)
        batch = EventBatch(records=len(starts), corrupt=corrupt)
        if not len(starts):
            return consumed, batch
        collected: dict[str, list[tuple[Any, Any, Any, Any]]] = {}
        covered = np.zeros(len(starts), dtype=bool)
        leftover = []
        bad = 0
        if len(starts) < BULK_MIN_RECORDS:  # a follower's few new records: one by one costs less than numpy's calls
            runs = []
            covered[:] = True
            leftover.append(np.arange(len(starts)))
            header_ok = _headers_ok(np, view, starts, lengths)
            bad += int((~header_ok).sum())
            leftover[0] = leftover[0][header_ok]
        for first, count, period, period_bytes in runs:  # predicted runs: each phase a strided matrix, no copy
            for phase in range(min(period, count)):
                rows = np.arange(first + phase, first + count, period)
                length = int(lengths[rows[0]])
                if length > SHORT_BYTES:
                    continue
                covered[rows] = True
                at = int(starts[rows[0]])
                matrix = _strided(np, data, at, (len(rows), length + 16), (period_bytes, 1))
                header_ok = _strided(np, data, at + 8, (len(rows),), (period_bytes,), "<u4") \
                    == masked_crc32c(struct.pack("<Q", length))
                stored = _strided(np, data, at + HEADER_BYTES + length, (len(rows),), (period_bytes,), "<u4")
                if not header_ok.all():
                    bad += int((~header_ok).sum())
                    matrix, rows, stored = matrix[header_ok], rows[header_ok], stored[header_ok]
                rest, failed = _check_and_decode(np, matrix[:, HEADER_BYTES:HEADER_BYTES + length], stored, length,
                                                 rows, collected)
                leftover.append(rest)
                bad += failed
        others = np.flatnonzero(~covered)
        if len(others):
            header_ok = _headers_ok(np, view, starts[others], lengths[others])
            bad += int((~header_ok).sum())
            others = others[header_ok]
            # rows grouped by data length in one radix sort (short lengths fit 16 bits; long ones share a bin)
            bins = np.minimum(lengths[others], SHORT_BYTES + 1).astype(np.uint16)
            order = others[np.argsort(bins, kind="stable")]
            bounds = np.concatenate(([0], np.cumsum(np.bincount(bins, minlength=SHORT_BYTES + 2))))
            leftover.append(order[bounds[SHORT_BYTES + 1]:])
            for length in np.flatnonzero(np.diff(bounds[:SHORT_BYTES + 2])).tolist():
                rows = order[bounds[length]:bounds[length + 1]]
                rest, failed = _short_group(np, view, starts[rows] + HEADER_BYTES, int(length), rows, collected)
                leftover.append(rest)
                bad += failed
        slow_rows = np.sort(np.concatenate(leftover)) if leftover else np.empty(0, dtype=np.int64)
        singles: dict[str, list[tuple[int, int, float, float]]] = {}
        for row in slow_rows.tolist():
            begin = int(starts[row]) + HEADER_BYTES
            body = data[begin:begin + int(lengths[row])]
            if (int(lengths[row]) > SHORT_BYTES or len(starts) < BULK_MIN_RECORDS) \
                    and not _data_crc_ok(data, begin, body):
                bad += 1
                continue
            before = len(batch.blobs)
            if not self._decode_event(np, body, row, singles, batch.blobs):
                bad += 1
            for k in range(before, len(batch.blobs)):
                blob = batch.blobs[k]
                batch.blobs[k] = EventBlob(blob.kind, blob.tag, blob.step, blob.wall_time,
                                           blob.data if self.keep_blob_data else b"", blob.width, blob.height,
                                           blob.sample_rate, str(self.path), self.offset + int(starts[row]))
        batch.corrupt += bad
        _add_singles(np, singles, collected)
        batch.scalars = _join_scalars(np, collected)
        return consumed, batch

    def _decode_event(self, np: Any, body: bytes, row: int, collected: dict[str, list[tuple[int, int, float, float]]],
                      blobs: list[EventBlob]) -> bool:
        """Decode one record with protobuf into `collected` scalars and `blobs`; False when it is not an Event."""
        from google.protobuf.message import DecodeError

        from trainer.foreign.tbproto import event_class

        event = event_class()()
        try:
            event.ParseFromString(body)
        except DecodeError:
            return False
        if not event.HasField("summary"):
            return True
        step, wall_time = int(event.step), float(event.wall_time)
        for value in event.summary.value:
            tag = value.tag
            plugin = value.metadata.plugin_data.plugin_name if value.HasField("metadata") else ""
            if plugin:
                self._plugins[tag] = plugin
            plugin = plugin or self._plugins.get(tag, "")
            which = value.WhichOneof("value")
            if which == "simple_value":
                _collect(np, collected, tag, row, step, wall_time, float(value.simple_value))
            elif which == "tensor":
                self._decode_tensor(np, value.tensor, plugin, tag, row, step, wall_time, collected, blobs)
            elif which == "image":
                image = value.image
                blobs.append(EventBlob("image", tag, step, wall_time, bytes(image.encoded_image_string),
                                       int(image.width), int(image.height)))
            elif which == "audio":
                blobs.append(EventBlob("audio", tag, step, wall_time, bytes(value.audio.encoded_audio_string),
                                       sample_rate=float(value.audio.sample_rate)))
        return True

    def _decode_tensor(self, np: Any, tensor: Any, plugin: str, tag: str, row: int, step: int, wall_time: float,
                       collected: dict[str, list[tuple[int, int, float, float]]], blobs: list[EventBlob]) -> None:
        """A tensor summary: a scalar (one number), images (`images` plugin) or audio (`audio` plugin)."""
        from trainer.foreign.tbproto import DT_STRING

        if tensor.dtype == DT_STRING:
            strings = [bytes(s) for s in tensor.string_val]
            if plugin == "images" and len(strings) > 2:
                width, height = (_small_int(s) for s in strings[:2])
                blobs.extend(EventBlob("image", tag, step, wall_time, s, width, height) for s in strings[2:])
            elif plugin == "audio":
                encoded = strings[0::2] if len(tensor.tensor_shape.dim) == 2 else strings
                blobs.extend(EventBlob("audio", tag, step, wall_time, s) for s in encoded)
            return
        if plugin not in ("", "scalars"):
            return
        number = _tensor_scalar(np, tensor)
        if number is not None:
            _collect(np, collected, tag, row, step, wall_time, number)


def blobs_at(path: Path, offset: int) -> list[EventBlob]:
    """The images and clips of the record at `offset` in an event file, with their data (CRC checked)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            header = handle.read(HEADER_BYTES)
            if len(header) < HEADER_BYTES:
                return []
            (length,) = struct.unpack_from("<Q", header, 0)
            data = header + handle.read(length + FOOTER_BYTES)
    except OSError:
        return []
    if len(data) < HEADER_BYTES + length + FOOTER_BYTES:
        return []
    reader = EventFileReader(Path(path))
    _, batch = reader._read_block(data)
    return batch.blobs


def _small_int(text: bytes) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _tensor_scalar(np: Any, tensor: Any) -> float | None:
    """The one number a scalar tensor holds, None when it holds another count or type."""
    from trainer.foreign import tbproto as tp

    if any(dim.size != 1 for dim in tensor.tensor_shape.dim):
        return None
    lists = {tp.DT_FLOAT: (tensor.float_val, "<f4"), tp.DT_DOUBLE: (tensor.double_val, "<f8"),
             tp.DT_INT32: (tensor.int_val, "<i4"), tp.DT_INT64: (tensor.int64_val, "<i8"),
             tp.DT_BOOL: (tensor.bool_val, "?"), tp.DT_HALF: (tensor.half_val, "<f2"),
             tp.DT_BFLOAT16: (tensor.half_val, "bf16")}
    if tensor.dtype not in lists:
        return None
    values, dtype = lists[tensor.dtype]
    content = bytes(tensor.tensor_content)
    if dtype == "bf16":
        bits = np.frombuffer(content, "<u2") if content else np.asarray(values, dtype=np.uint16)
        array = (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)
    elif dtype == "<f2" and not content:
        array = np.asarray(values, dtype=np.uint16).view(np.float16)
    elif content:
        if len(content) % np.dtype(dtype).itemsize:
            return None
        array = np.frombuffer(content, dtype)
    else:
        array = np.asarray(list(values), dtype=np.float64)
    return float(array[0]) if len(array) == 1 else None


def _data_crc_ok(data: bytes, begin: int, body: bytes) -> bool:
    (stored,) = struct.unpack_from("<I", data, begin + len(body))
    return masked_crc32c(body) == stored


def _collect(np: Any, singles: dict[str, list[tuple[int, int, float, float]]], tag: str, row: int, step: int,
             wall_time: float, value: float) -> None:
    """One scalar decoded by protobuf (made into arrays with the others of its tag by `_add_singles`)."""
    singles.setdefault(tag, []).append((row, step, wall_time, value))


def _add_singles(np: Any, singles: dict[str, list[tuple[int, int, float, float]]],
                 collected: dict[str, list[tuple[Any, Any, Any, Any]]]) -> None:
    for tag, points in singles.items():
        rows, steps, walls, values = zip(*points)
        collected.setdefault(tag, []).append((np.asarray(rows, dtype=np.int64), np.asarray(steps, dtype=np.int64),
                                              np.asarray(walls, dtype=np.float64), np.asarray(values, dtype=np.float64)))


def _join_scalars(np: Any, collected: dict[str, list[tuple[Any, Any, Any, Any]]]) -> dict[str, tuple[Any, Any, Any]]:
    """Per tag, its points from the bulk and the one-by-one paths joined in record order."""
    scalars = {}
    for tag, parts in collected.items():
        rows, steps, walls, values = (np.concatenate([p[k] for p in parts]) for k in range(4))
        if len(parts) > 1 and np.any(rows[1:] < rows[:-1]):
            order = np.argsort(rows, kind="stable")
            steps, walls, values = steps[order], walls[order], values[order]
        scalars[tag] = (steps.astype(np.int64), walls.astype(np.float64), values.astype(np.float64))
    return scalars


def _merge(parts: list[EventBatch]) -> EventBatch:
    """Blocks of one read joined into one batch, in file order."""
    if len(parts) == 1:
        return parts[0]
    merged = EventBatch()
    if not parts:
        return merged
    import numpy as np

    by_tag: dict[str, list[tuple[Any, Any, Any]]] = {}
    for part in parts:
        merged.records += part.records
        merged.corrupt += part.corrupt
        merged.blobs.extend(part.blobs)
        for tag, series in part.scalars.items():
            by_tag.setdefault(tag, []).append(series)
    merged.scalars = {tag: tuple(np.concatenate([s[k] for s in series]) for k in range(3))  # type: ignore[misc]
                      for tag, series in by_tag.items()}
    return merged


# --- framing ------------------------------------------------------------------------------------


def _frame(np: Any, data: bytes, view: Any) -> tuple[Any, Any, int, int, list[tuple[int, int, int, int]]]:
    """(record starts, data lengths, bytes consumed, corrupt headers skipped, predicted runs) of the whole
    records in `data`; a run is (index of its first record, records, period in records, period in bytes).

    Records are taken one by one (checking each length's CRC) until their lengths show a repeating
    pattern (a run logs the same tags in the same order); then up to PREDICT_RECORDS starts are
    predicted from it and checked in bulk against the lengths actually stored there, and whatever
    matches is taken at once. A corrupt length is skipped by searching for the next valid header.
    """
    size = len(data)
    starts: list[Any] = []
    lengths: list[Any] = []
    recent: list[int] = []
    position, corrupt, count = 0, 0, 0
    runs: list[tuple[int, int, int, int]] = []
    while True:
        one_by_one_starts, one_by_one_lengths = [], []
        for _ in range(SEQUENTIAL_RECORDS):
            if position + HEADER_BYTES > size:
                break
            (length,) = struct.unpack_from("<Q", data, position)
            (stored,) = struct.unpack_from("<I", data, position + 8)
            if masked_crc32c(data[position:position + 8]) != stored:
                corrupt += 1
                position = _resync(np, data, view, position + 1)
                continue
            if position + HEADER_BYTES + length + FOOTER_BYTES > size:
                break  # cut off: the writer is mid-record, or the block ends here
            one_by_one_starts.append(position)
            one_by_one_lengths.append(length)
            position += HEADER_BYTES + length + FOOTER_BYTES
        else:
            one_by_one_starts.append(-1)  # marks "went the whole way": try predicting
        went_on = bool(one_by_one_starts) and one_by_one_starts[-1] == -1
        if went_on:
            one_by_one_starts.pop()
        starts.append(np.asarray(one_by_one_starts, dtype=np.int64))
        lengths.append(np.asarray(one_by_one_lengths, dtype=np.int64))
        count += len(one_by_one_starts)
        recent = (recent + one_by_one_lengths)[-4 * SEQUENTIAL_RECORDS:]
        if not went_on:
            break
        while True:
            predicted = _predict(np, view, size, position, recent)
            if predicted is None:
                break
            taken_starts, taken_lengths, period, period_bytes = predicted
            starts.append(taken_starts)
            lengths.append(taken_lengths)
            runs.append((count, len(taken_starts), period, period_bytes))
            count += len(taken_starts)
            position = int(taken_starts[-1] + taken_lengths[-1]) + HEADER_BYTES + FOOTER_BYTES
            recent = (recent + taken_lengths[-2 * SEQUENTIAL_RECORDS:].tolist())[-4 * SEQUENTIAL_RECORDS:]
    return np.concatenate(starts), np.concatenate(lengths), min(position, size), corrupt, runs


def _predict(np: Any, view: Any, size: int, position: int, recent: list[int]) -> tuple[Any, Any, int, int] | None:
    """The records from `position` on that follow the repeating pattern of `recent` lengths, checked:
    (starts, lengths, period in records, period in bytes), whole periods only; None when none follow.

    Each phase of the pattern sits at a constant stride, so its stored lengths are read through a
    strided view of the block, not gathered one by one.
    """
    pattern = None
    for period in range(1, min(64, len(recent) // 2) + 1):
        if recent[-period:] == recent[-2 * period:-period]:
            pattern = recent[-period:]
            break
    if pattern is None:
        return None
    period = len(pattern)
    record_bytes = np.asarray(pattern, dtype=np.int64) + HEADER_BYTES + FOOTER_BYTES
    period_bytes = int(record_bytes.sum())
    cycles = min(PREDICT_RECORDS // period + 1, (size - position) // period_bytes)
    if cycles < 1:
        return None
    offsets = position + np.concatenate(([0], np.cumsum(record_bytes)[:-1]))
    taken = cycles * period
    for phase in range(period):
        stored = _strided(np, view, int(offsets[phase]), (cycles,), (period_bytes,), "<u8")
        wrong = np.flatnonzero(stored != pattern[phase])
        if len(wrong):
            taken = min(taken, int(wrong[0]) * period + phase)
    if taken == 0:
        return None
    starts = (offsets[None, :] + period_bytes * np.arange(cycles, dtype=np.int64)[:, None]).ravel()[:taken]
    lengths = np.tile(np.asarray(pattern, dtype=np.int64), cycles)[:taken]
    return starts, lengths, period, period_bytes


def _resync(np: Any, data: bytes, view: Any, position: int) -> int:
    """The next offset from `position` where a header's CRC matches its length (the end if there is none)."""
    size = len(data)
    last = size - HEADER_BYTES
    if position > last:
        return size
    candidates = np.arange(position, last + 1, dtype=np.int64)
    candidates = candidates[view[candidates + 7] == 0]  # a length below 2**56
    if len(candidates):
        words = _windows(np, view, candidates, 12)
        crc = np.full(len(candidates), _crc_of_zeros(8), dtype=np.uint32)
        tables = _distance_tables()
        for column in range(8):
            crc ^= tables[7 - column][words[:, column]]
        found = np.flatnonzero(_mask(crc) == words[:, 8:12].copy().view("<u4").ravel())
        if len(found):
            return int(candidates[found[0]])
    return size - HEADER_BYTES + 1


@functools.cache
def _crc_of_zeros(count: int) -> int:
    import google_crc32c

    return google_crc32c.value(bytes(count))


def _strided(np: Any, data: Any, offset: int, shape: tuple[int, ...], strides: tuple[int, ...],
             dtype: str = "u1") -> Any:
    """A read-only view of `data` (bytes or a uint8 array): items of `dtype` from `offset`, `strides` apart
    (unaligned items are fine for numpy); no copy."""
    return np.ndarray(shape=shape, dtype=np.dtype(dtype), buffer=data, offset=offset, strides=strides)


def _windows(np: Any, view: Any, at: Any, width: int) -> Any:
    """Rows of `width` bytes of `view` from each offset in `at` (a copy, one memcpy per row)."""
    if len(view) < width:
        return np.zeros((len(at), width), dtype=np.uint8)
    records = np.ndarray(shape=(len(view) - width + 1,), dtype=np.dtype((np.void, width)), buffer=view, strides=(1,))
    return records[np.asarray(at, dtype=np.int64)].view(np.uint8).reshape(len(at), width)


def _headers_ok(np: Any, view: Any, starts: Any, lengths: Any) -> Any:
    """Whether each record's stored length CRC matches (one CRC computed per distinct short length)."""
    stored = _windows(np, view, starts + 8, 4).view("<u4").ravel()
    short = lengths <= SHORT_BYTES
    expected = np.zeros(len(lengths), dtype=np.uint32)
    table = np.zeros(SHORT_BYTES + 1, dtype=np.uint32)
    for n in np.flatnonzero(np.bincount(lengths[short], minlength=SHORT_BYTES + 1)).tolist():
        table[n] = masked_crc32c(struct.pack("<Q", n))
    expected[short] = table[lengths[short]]
    for row in np.flatnonzero(~short).tolist():
        expected[row] = masked_crc32c(struct.pack("<Q", int(lengths[row])))
    return stored == expected


# --- the bulk path: short records ---------------------------------------------------------------


def _short_group(np: Any, view: Any, data_starts: Any, length: int, rows: Any,
                 collected: dict[str, list[tuple[Any, Any, Any, Any]]]) -> tuple[Any, int]:
    """Check the CRC of records of one data length and decode the plain scalar events among them.

    Returns (rows left for protobuf, records whose CRC failed).
    """
    if length == 0:
        return rows, 0
    block = _windows(np, view, data_starts, length + FOOTER_BYTES)
    return _check_and_decode(np, block[:, :length], block[:, length:].copy().view("<u4").ravel(), length, rows,
                             collected)


def _check_and_decode(np: Any, body: Any, stored: Any, length: int, rows: Any,
                      collected: dict[str, list[tuple[Any, Any, Any, Any]]]) -> tuple[Any, int]:
    """`_short_group` on the records' data as a matrix (rows x length) and their stored CRCs.

    The matrix is turned column-major first (one copy), so each byte position is a contiguous array:
    every later step reads whole positions at memory speed.
    """
    import google_crc32c

    columns = np.ascontiguousarray(body.T)
    first = columns[:, 0].copy()
    crc = np.full(columns.shape[1], google_crc32c.value(first.tobytes()), dtype=np.uint32)
    tables = _distance_tables()
    for position in np.flatnonzero((columns != first[:, None]).any(axis=1)).tolist():
        table = tables[length - 1 - position]
        crc ^= table[columns[position]] ^ table[first[position]]
    ok = _mask(crc) == stored
    failed = int((~ok).sum())
    if failed:
        columns, rows = columns[:, ok], rows[ok]
    if not len(rows):
        return rows, failed
    taken = np.zeros(len(rows), dtype=bool)
    if length >= 16:
        _plain_scalars(np, columns, length, rows, taken, collected)
    return rows[~taken], failed


def _plain_scalars(np: Any, columns: Any, length: int, rows: Any, taken: Any,
                   collected: dict[str, list[tuple[Any, Any, Any, Any]]]) -> None:
    """Decode, in bulk, the events laid out as every SummaryWriter writes a scalar:
    `09 <wall_time f64> [10 <step varint>] 2a L1 0a L2 0a T <tag> 15 <value f32>`.
    `columns` holds the records column-major (byte position x record)."""
    plain = columns[0] == 0x09
    has_step = columns[9] == 0x10
    varint = columns[10:min(length, 20)] < 0x80
    varint_bytes = np.where(varint.any(axis=0), varint.argmax(axis=0) + 1, 0)
    at = np.where(has_step, 10 + varint_bytes, 9)
    plain &= ~has_step | (varint_bytes > 0)
    for p in np.unique(at[plain]).tolist():
        tag_bytes = length - p - 11
        if tag_bytes < 0 or length - p - 2 > 127:
            continue
        chosen = plain & (at == p)
        group = np.flatnonzero(chosen)
        part = columns if len(group) == columns.shape[1] else columns[:, group]
        good = ((part[p] == 0x2A) & (part[p + 1] == length - p - 2) & (part[p + 2] == 0x0A)
                & (part[p + 3] == length - p - 4) & (part[p + 4] == 0x0A) & (part[p + 5] == tag_bytes)
                & (part[length - 5] == 0x15))
        if not good.all():
            group, part = group[good], part[:, good]
        if not len(group):
            continue
        steps = np.zeros(len(group), dtype=np.uint64)
        for k in range(p - 10):
            steps |= (part[10 + k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        walls = np.ascontiguousarray(part[1:9].T).view("<f8").ravel()
        values = np.ascontiguousarray(part[length - 4:length].T).view("<f4").ravel().astype(np.float64)
        for tag, mine in _same_tags(np, part[p + 6:p + 6 + tag_bytes]):
            collected.setdefault(tag, []).append((rows[group[mine]], steps[mine].astype(np.int64), walls[mine],
                                                  values[mine]))
        taken[group] = True


def _same_tags(np: Any, tag_columns: Any) -> list[tuple[str, Any]]:
    """(tag, rows ascending) for each distinct tag among records' tag bytes, all of one length, given
    column-major (byte position x record).

    Most often every record holds one tag (a phase of a repeating pattern): one comparison says so.
    Otherwise each record's bytes are hashed to one 64-bit word and the records sorted by it (a collision
    is caught by comparing every record with its group's first, and then np.unique sorts the bytes).
    """
    width, count = tag_columns.shape
    if width == 0 or (tag_columns == tag_columns[:, :1]).all():
        return [(bytes(tag_columns[:, 0]).decode("utf-8", errors="replace") if count else "", np.arange(count))]
    hashes = np.zeros(count, dtype=np.uint64)
    for position in range(width):
        multiplier = np.uint64((0x9E3779B97F4A7C15 * (2 * position + 1)) % 2**64)
        hashes = hashes * np.uint64(31) + tag_columns[position].astype(np.uint64) * multiplier
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    firsts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1))
    group_first = order[firsts][np.cumsum(np.isin(np.arange(count), firsts)) - 1]
    if not (tag_columns[:, order] == tag_columns[:, group_first]).all():
        records = np.ascontiguousarray(tag_columns.T)
        distinct, inverse = np.unique(records.view(np.dtype((np.void, width))).ravel(), return_inverse=True)
        return [(bytes(raw)[:width].decode("utf-8", errors="replace"), np.flatnonzero(inverse.ravel() == k))
                for k, raw in enumerate(distinct.tolist())]
    ends = np.append(firsts[1:], count)
    return [(bytes(tag_columns[:, order[first]]).decode("utf-8", errors="replace"), order[first:end])
            for first, end in zip(firsts.tolist(), ends.tolist())]


# --- a folder of event files -----------------------------------------------------------------------


def is_event_file(name: str) -> bool:
    """Whether a file name is a TensorBoard event file (`events.out.tfevents.*`), not a temp or profile file."""
    return name.startswith("events.out.") and EVENT_FILE_MARK in name and not name.endswith((".tmp", ".profile-empty"))


def find_event_files(folder: Path, max_depth: int = 3) -> list[Path]:
    """The event files in `folder` and its subfolders (to `max_depth`), oldest first within each folder.

    An event file's name carries its writer's start time (`events.out.tfevents.<seconds>.<host>...`),
    so name order within a folder is the order of restarts.
    """
    found: list[Path] = []

    def walk(path: Path, depth: int) -> None:
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.is_file() and is_event_file(entry.name):
                found.append(Path(entry.path))
            elif depth < max_depth and entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                walk(Path(entry.path), depth + 1)

    walk(Path(folder), 0)
    return sorted(found, key=lambda p: (str(p.parent), _start_time(p.name), p.name))


def _start_time(name: str) -> float:
    parts = name.split(".")
    try:
        return float(parts[parts.index(EVENT_FILE_MARK) + 1])
    except (ValueError, IndexError):
        return 0.0


class EventLog:
    """Every event file under a folder, followed together; tags of a subfolder's files are prefixed
    with the subfolder (`eval/slice/mel_gen`), as TensorBoard shows them as a run of their own.

    `read_new()` returns, per file in start-time order, what each appended; files that appear later
    (a restart, a new subfolder) are picked up on the next call.
    """

    def __init__(self, folder: Path, max_depth: int = 3, keep_blob_data: bool = False):
        self.folder = Path(folder)
        self.max_depth = max_depth
        self.keep_blob_data = keep_blob_data
        self.readers: dict[Path, EventFileReader] = {}

    @property
    def corrupt(self) -> int:
        return sum(reader.corrupt for reader in self.readers.values())

    @property
    def records(self) -> int:
        return sum(reader.records for reader in self.readers.values())

    def prefix(self, path: Path) -> str:
        """The tag prefix of an event file: its folder relative to the log's, with a slash, or ''."""
        try:
            relative = path.parent.relative_to(self.folder)
        except ValueError:
            return ""
        return "" if str(relative) == "." else f"{relative.as_posix()}/"

    def read_new(self) -> list[tuple[Path, EventBatch]]:
        """(file, what it appended) for every file with something new, files in start-time order."""
        found = []
        for path in find_event_files(self.folder, self.max_depth):
            reader = self.readers.get(path)
            if reader is None:
                reader = self.readers[path] = EventFileReader(path, self.keep_blob_data)
            batch = reader.read_new()
            if batch.records or batch.corrupt:
                prefix = self.prefix(path)
                if prefix:
                    batch.scalars = {prefix + tag: series for tag, series in batch.scalars.items()}
                    batch.blobs = [EventBlob(b.kind, prefix + b.tag, b.step, b.wall_time, b.data, b.width, b.height,
                                             b.sample_rate, b.file, b.offset) for b in batch.blobs]
                found.append((path, batch))
        return found

    def size_bytes(self) -> int:
        """Bytes of every event file found so far (what a poll compares against)."""
        total = 0
        for path in self.readers:
            try:
                total += path.stat().st_size
            except OSError:
                pass
        return total
