"""metrics.index: a reader attaching through it sees exactly what parsing metrics.jsonl gives."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from trainer.rundir import INDEX_HEADER, INDEX_ROW, MetricsReader, MetricsWriter, index_path

FIELDS = {"train": ("step", "loss", "attention_score"), "val": ("step", "loss", "attention_score")}


def write_run(path: Path, steps: range = range(1, 401), writer: MetricsWriter | None = None) -> MetricsWriter:
    writer = writer or MetricsWriter(path)
    writer.write("start", steps.start, epoch=1, resumed_from=None)
    for step in steps:
        loss = math.nan if step == 37 else 5.0 / step
        fields = {"attention_score": 0.001 * step} if step % 3 else {}  # some records lack a field
        writer.write("train", step, epoch=1 + step // 100, loss=loss, loss_mel=loss / 2, lr=1e-3, **fields)
        if step % 50 == 0:
            writer.write("val", step, loss=4.0 / step, attention_score=None if step == 100 else 0.3)
        if step % 100 == 0:
            writer.write("checkpoint", step, path=f"checkpoints/step-{step:08d}.pt", val_loss=0.1, tags=["best"])
            writer.write("event", step, level="info", code="note", message=f"at {step} \u00e9")
    return writer


def read(path: Path, tail: int = 5):
    reader = MetricsReader(path)
    return reader, reader.read_new_columns(FIELDS, tail=tail)


def same(a, b) -> None:
    assert a.lines == b.lines
    assert a.records == b.records and a.record_lines == b.record_lines
    for kind in FIELDS:
        assert a.columns[kind].keys() == b.columns[kind].keys()
        for name in a.columns[kind]:
            np.testing.assert_array_equal(a.columns[kind][name], b.columns[kind][name], err_msg=f"{kind}.{name}")
        assert a.tails[kind] == b.tails[kind] and a.tail_lines[kind] == b.tail_lines[kind]


def parsed_without_index(path: Path, tmp_path: Path):
    copy = tmp_path / "plain" / "metrics.jsonl"
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(path, copy)
    assert not index_path(copy).exists()
    return read(copy)


def test_the_index_gives_what_parsing_gives_and_reading_goes_on_after_it(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    writer = write_run(path)
    assert index_path(path).stat().st_size == len(INDEX_HEADER) + INDEX_ROW.size * len(path.read_bytes().splitlines())
    reader, got = read(path)
    assert reader.offset == path.stat().st_size
    plain_reader, plain = parsed_without_index(path, tmp_path)
    same(got, plain)
    # a loss that is not a finite number makes a record malformed, through the index or not
    assert got.columns["train"]["step"][-1] == 400 and 37 not in got.columns["train"]["step"].tolist()
    assert reader.malformed == plain_reader.malformed == 1
    write_run(path, range(401, 421), writer)  # a resume appends; the follower reads only the new bytes
    more = reader.read_new_columns(FIELDS, tail=5)
    assert more.columns["train"]["step"].tolist() == list(range(401, 421))
    assert [r["kind"] for r in more.records] == ["start"]


def test_a_crash_between_the_line_and_its_row_is_mended_on_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write_run(path).close()
    with open(path, "ab") as handle:  # the trainer died after writing these lines, before their rows
        handle.write(b'{"t": 1.0, "kind": "train", "step": 401, "loss": 0.5}\n{"t": 1.0, "kind": "val", "step": 401, "lo')
    with open(index_path(path), "ab") as handle:  # ...or after a row whose line never made it
        handle.write(INDEX_ROW.pack(path.stat().st_size + 10, 40, 1, 402.0, 0.1, 0.1))
    writer = MetricsWriter(path)
    writer.write("train", 402, loss=0.4)
    _, got = read(path)
    assert got.columns["train"]["step"][-2:].tolist() == [401, 402]
    same(got, parsed_without_index(path, tmp_path)[1])


def test_an_index_that_disagrees_with_the_file_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write_run(path).close()
    raw = bytearray(index_path(path).read_bytes())
    row = len(INDEX_HEADER) + 20 * INDEX_ROW.size  # shift one row's offset: it points into another line
    offset = INDEX_ROW.unpack_from(raw, row)[0]
    INDEX_ROW.pack_into(raw, row, offset + 3, *INDEX_ROW.unpack_from(raw, row)[1:])
    index_path(path).write_bytes(bytes(raw))
    same(read(path)[1], parsed_without_index(path, tmp_path)[1])
    index_path(path).write_bytes(b"not an index at all")
    same(read(path)[1], parsed_without_index(path, tmp_path)[1])


def test_a_run_from_before_the_index_gets_none_and_reads_as_before(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write_run(path).close()
    os.unlink(index_path(path))
    write_run(path, range(401, 411)).close()  # resumed by this version: no index is started midway
    assert not index_path(path).exists()
    reader, got = read(path)
    assert got.columns["train"]["step"][-1] == 410 and reader.offset == path.stat().st_size


@pytest.mark.parametrize("other_fields", [{"train": ("step", "grad_norm")}, {"event": ("step",)}])
def test_fields_the_index_does_not_hold_are_parsed(tmp_path: Path, other_fields) -> None:
    path = tmp_path / "metrics.jsonl"
    write_run(path).close()
    got = MetricsReader(path).read_new_columns(other_fields)
    kind = next(iter(other_fields))
    assert len(got.columns[kind]["step"]) > 0


def test_a_line_the_index_does_not_know_ends_the_part_it_covers(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    writer = write_run(path)
    with open(path, "ab") as handle:  # another process (or a hand) appends while the trainer writes
        handle.write(b'{"t": 2.0, "kind": "train", "step": 401, "loss": 0.3}\n\x00junk\n')
    writer.write("train", 402, loss=0.2)
    reader, got = read(path)
    # malformed: the junk line and write_run's record with a NaN loss
    assert got.columns["train"]["step"][-2:].tolist() == [401, 402] and reader.malformed == 2
    same(got, parsed_without_index(path, tmp_path)[1])
