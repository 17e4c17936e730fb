"""The native TensorBoard event reader against TensorBoard's own protos, google_crc32c and real SummaryWriter files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from trainer.foreign.tbevents import EventFileReader, EventLog, blobs_at, masked_crc32c

event_pb2 = pytest.importorskip("tensorboard.compat.proto.event_pb2", reason="dev extras: tensorboard")
summary_pb2 = pytest.importorskip("tensorboard.compat.proto.summary_pb2")
google_crc32c = pytest.importorskip("google_crc32c")


def frame(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the data, its masked CRC."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def scalar_event(tag: str, step: int, value: float, wall: float = 1.7e9) -> bytes:
    event = event_pb2.Event(wall_time=wall, step=step)
    event.summary.value.add(tag=tag, simple_value=value)
    return event.SerializeToString()


def test_masked_crc_matches_tensorboard() -> None:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as tb_masked

    for data in (b"", b"\0" * 8, b"voxtop", bytes(range(256)) * 3):
        assert masked_crc32c(data) == tb_masked(data)


def test_bulk_path_equals_protobuf_on_random_scalars(tmp_path: Path) -> None:
    """Steps of every varint width (step 0 omitted by proto3), tags of many lengths, values 0.0 included:
    the bulk numpy path and the one-record-at-a-time path must agree with TensorBoard's protos."""
    rng = np.random.default_rng(7)
    tags = ["a", "loss/g/total", "loss/g/mel", "x" * 60, "grad_norm_g", "ü/ß"]
    expected: dict[str, list[tuple[int, float, float]]] = {t: [] for t in tags}
    steps = [0, 1, 127, 128, 16383, 16384, 2**21, 2**35, 2**62]
    blob = b""
    for k in range(3000):
        tag = tags[k % len(tags)] if k % 97 else tags[int(rng.integers(len(tags)))]
        step = steps[k % len(steps)] if k < 100 else k * 3
        value = 0.0 if k % 50 == 0 else float(np.float32(rng.standard_normal()))
        wall = 1.7e9 + k * 0.25
        blob += frame(scalar_event(tag, step, value, wall))
        expected[tag].append((step, wall, value))
    path = tmp_path / "events.out.tfevents.1.host"
    path.write_bytes(blob)
    batch = EventFileReader(path).read_new()
    assert batch.corrupt == 0 and batch.records == 3000
    for tag in tags:
        steps_read, walls, values = batch.scalars[tag]
        want = np.array(expected[tag])
        assert steps_read.tolist() == [int(s) for s in want[:, 0]], tag
        assert np.array_equal(walls, want[:, 1]) and np.array_equal(values, want[:, 2].astype(np.float32)), tag


def test_scalar_tensors_images_and_audio(tmp_path: Path) -> None:
    """A SummaryWriter's new-style scalar (a tensor), an image and an audio clip, as torch writes them."""
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    for step in range(5):
        writer.add_scalar("EvalStats/avg_loss", 1.0 / (step + 1), step, new_style=True)
        writer.add_scalar("plain", float(step), step)
    picture = (np.arange(12 * 20).reshape(12, 20) % 256).astype(np.uint8)
    writer.add_image("slice/mel_gen", np.repeat(picture[:, :, None], 3, axis=2), 4, dataformats="HWC")
    writer.add_audio("gen/audio", torch.zeros(1, 100), 4, sample_rate=16000)
    writer.close()
    log = EventLog(tmp_path)
    [(path, batch)] = log.read_new()
    steps, _, values = batch.scalars["EvalStats/avg_loss"]
    assert steps.tolist() == [0, 1, 2, 3, 4]
    assert np.allclose(values, [1.0, 0.5, 1 / 3, 0.25, 0.2])
    assert batch.scalars["plain"][2].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    kinds = {(b.kind, b.tag, b.step) for b in batch.blobs}
    assert kinds == {("image", "slice/mel_gen", 4), ("audio", "gen/audio", 4)}
    image = next(b for b in batch.blobs if b.kind == "image")
    assert image.data == b"" and image.offset > 0  # a folder's reader keeps no image data in memory
    [again] = [b for b in blobs_at(path, image.offset) if b.kind == "image"]
    assert again.data.startswith(b"\x89PNG") and (again.width, again.height) == (20, 12)
    audio = next(b for b in blobs_at(path, next(b for b in batch.blobs if b.kind == "audio").offset))
    assert audio.data.startswith(b"RIFF") and audio.sample_rate == 16000


def test_follows_a_growing_file_with_a_half_written_record(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.1.host"
    records = [frame(scalar_event("loss", step, step * 0.5)) for step in range(1, 201)]
    whole = b"".join(records)
    cut = len(b"".join(records[:120])) + 7  # inside record 121's header
    path.write_bytes(whole[:cut])
    reader = EventFileReader(path)
    first = reader.read_new()
    assert first.scalars["loss"][0].tolist() == list(range(1, 121))
    assert reader.offset == len(b"".join(records[:120]))
    with open(path, "ab") as handle:  # the writer finishes the header and half the data
        handle.write(whole[cut:cut + 20])
    assert reader.read_new().records == 0
    with open(path, "ab") as handle:
        handle.write(whole[cut + 20:])
    second = reader.read_new()
    assert second.scalars["loss"][0].tolist() == list(range(121, 201))
    assert reader.corrupt == 0 and reader.read_new().records == 0


@pytest.mark.parametrize("count", [100, 3000])  # a follower's few records (one by one) and a long file (in bulk)
def test_corrupt_records_are_counted_and_skipped(tmp_path: Path, count: int) -> None:
    records = [bytearray(frame(scalar_event("loss", step, float(step)))) for step in range(1, count + 1)]
    bad = [count // 10, count // 2, count * 7 // 10]
    records[bad[0]][-6] ^= 0xFF  # data flipped: the data CRC fails
    records[bad[1]][3] ^= 0x40  # a length flipped: its CRC fails, the reader finds the next record
    records[bad[2]][-1] ^= 0x01  # the stored data CRC itself
    path = tmp_path / "events.out.tfevents.1.host"
    path.write_bytes(b"".join(bytes(r) for r in records) + b"\x05\x00\x00")
    reader = EventFileReader(path)
    batch = reader.read_new()
    assert batch.scalars["loss"][0].tolist() == [s for s in range(1, count + 1) if s - 1 not in bad]
    assert reader.corrupt == 3


def test_a_folder_of_restarts_and_subfolders(tmp_path: Path) -> None:
    (tmp_path / "eval").mkdir()
    (tmp_path / "events.out.tfevents.100.host.1.0").write_bytes(b"".join(frame(scalar_event("a", s, 1.0))
                                                                        for s in range(3)))
    (tmp_path / "events.out.tfevents.200.host.2.0").write_bytes(frame(scalar_event("a", 1, 2.0)))
    (tmp_path / "eval" / "events.out.tfevents.150.host.1.1").write_bytes(frame(scalar_event("a", 0, 3.0)))
    found = [(path.name, batch.scalars) for path, batch in EventLog(tmp_path).read_new()]
    assert [name for name, _ in found] == ["events.out.tfevents.100.host.1.0", "events.out.tfevents.200.host.2.0",
                                           "events.out.tfevents.150.host.1.1"]
    assert list(found[2][1]) == ["eval/a"]
