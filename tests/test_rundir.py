"""The run-directory contract: names, atomic writes, the incremental metrics reader, listing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from trainer.rundir import (MetricsReader, MetricsWriter, RunDir, RunError, atomic_write, create_run,
                            current_history, inside, list_runs, new_run_name, resolve_run)


def test_run_names_are_checked() -> None:
    assert new_run_name("my-voice.v2").startswith("my-voice.v2_")
    for bad in ("", "..", "a/b", "../x", "voice name", "ü"):
        with pytest.raises(RunError, match="not allowed"):
            new_run_name(bad)


def test_create_run_never_reuses_a_folder(tmp_path: Path) -> None:
    from datetime import datetime

    now = datetime(2026, 1, 2, 3, 4, 5)
    first = create_run(tmp_path, "voice", "x = 1\n", now)
    second = create_run(tmp_path, "voice", "x = 2\n", now)
    assert first.name == "voice_20260102_030405" and second.name == "voice_20260102_030405-1"
    assert first.config_path.read_text() == "x = 1\n"
    assert [r.name for r in list_runs(tmp_path)] == [second.name, first.name]
    assert resolve_run(tmp_path, first.name).path == first.path
    with pytest.raises(RunError, match="not a voxtop run"):
        resolve_run(tmp_path, "nothing")


def test_atomic_write_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    target.write_text("old")

    def explode(handle):
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, explode)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["status.json"]


def test_metrics_reader_reads_only_new_bytes_and_skips_junk(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    reader = MetricsReader(path)
    writer.write("train", 1, loss=1.0)
    assert [r["step"] for r in reader.read_new()] == [1]
    assert reader.read_new() == []
    with open(path, "ab") as handle:
        handle.write(b'{"kind": "train", "step": 2, "loss": 0.9}\n\xff\xfe garbage\n[1, 2]\n{"kind": "tr')
    assert [r["step"] for r in reader.read_new()] == [2]
    assert reader.malformed == 2
    with open(path, "ab") as handle:
        handle.write(b'ain", "step": 3, "loss": 0.8}\n')
    assert [r["step"] for r in reader.read_new()] == [3]  # the partial line, completed
    offset = reader.offset
    writer.write("val", 3, loss=0.7)
    new = reader.read_new()
    assert new[0]["kind"] == "val" and reader.offset > offset
    path.write_text(json.dumps({"kind": "start", "step": 0}) + "\n")  # replaced by a shorter file
    assert [r["kind"] for r in reader.read_new()] == ["start"]


def test_current_history_drops_what_a_resume_repeats() -> None:
    records = [{"kind": "start", "step": 0, "resumed_from": None}]
    records += [{"kind": "train", "step": s} for s in range(1, 8)]
    records += [{"kind": "start", "step": 5, "resumed_from": 5}, {"kind": "train", "step": 6}]
    steps = [r["step"] for r in current_history(records) if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_checkpoint_listing_ignores_temp_files(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.make_folders()
    (run.checkpoints_dir / "step-00000010.pt").write_bytes(b"x")
    (run.checkpoints_dir / ".step-00000020.pt.tmp-123").write_bytes(b"half")
    (run.checkpoints_dir / "step-20.pt").write_bytes(b"wrong name")
    assert [c.step for c in run.checkpoints()] == [10]


def test_lock_is_exclusive_and_dies_with_its_holder(tmp_path: Path) -> None:
    import subprocess
    import sys

    run = RunDir(tmp_path / "run")
    run.make_folders()
    assert not run.is_locked()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, %r); from trainer.rundir import RunDir; "
        "r = RunDir(%r); r.acquire_lock(); print('locked', flush=True); time.sleep(60)") % (
        str(Path(__file__).parent.parent), str(run.path))], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert run.is_locked()
        with pytest.raises(RunError, match=f"already being trained by pid {holder.pid}"):
            run.acquire_lock()
    finally:
        holder.kill()
        holder.wait()
    assert not run.is_locked()
    run.acquire_lock()
    run.release_lock()


def test_effective_state_of_a_dead_trainer_is_stale(tmp_path: Path) -> None:
    import socket
    import time

    run = RunDir(tmp_path / "run")
    run.make_folders()
    run.write_status(state="running", host=socket.gethostname(), pid=999999)
    assert run.effective_state() == "stale"
    run.write_status(state="running", host="elsewhere")
    assert run.effective_state() == "running"
    assert run.effective_state(now=time.time() + 3600) == "stale"
    run.write_status(state="finished")
    assert run.effective_state() == "finished"


def test_inside(tmp_path: Path) -> None:
    assert inside(tmp_path, tmp_path / "run")
    assert not inside(tmp_path, tmp_path)
    assert not inside(tmp_path / "runs", tmp_path / "runs" / ".." / "other")


def test_column_reader_agrees_with_the_record_reader(tmp_path: Path) -> None:
    """The fast numpy path must give exactly what json gives, whatever the line layout."""
    import math

    import numpy as np

    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    for step in range(1, 301):
        writer.write("train", step, loss=1.0 / step, attention_score=step / 1000, lr=1e-3)
        if step % 50 == 0:
            writer.write("val", step, loss=0.5 + step / 1e4, attention_score=None)
    with open(path, "ab") as handle:
        handle.write(b'{"step": 301, "kind": "train", "loss": 0.5, "attention_score": Infinity}\n')
        handle.write(b'{"t": 1, "kind": "train", "step": 301, "loss": NaN}\n')  # malformed: loss not finite
        handle.write(b'{"t": 1, "kind": "train", "step": 301.0, "loss": 0.5}\n')  # malformed: step not whole
        handle.write(b'{"kind":"train","step":302,"loss":-1e-300,"extra":{"nested":[1,2]}}\n')
        handle.write(b"\x00\x01 junk\n")
        handle.write(b'{"t": 1, "kind": "event", "step": 302, "code": "oom_backoff", "message": "x"}\n')
    writer.write("train", 303, loss=0.25)
    fields = {"train": ("step", "loss", "attention_score"), "val": ("step", "loss")}
    slow = MetricsReader(path)
    records = slow.read_new()
    fast = MetricsReader(path)
    columns = fast.read_new_columns(fields)
    for kind, names in fields.items():
        expected = [r for r in records if r["kind"] == kind]
        for name in names:
            want = [float("nan") if r.get(name) is None else float(r[name]) for r in expected]
            got = columns.columns[kind][name].tolist()
            assert len(got) == len(want), (kind, name)
            assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(got, want)), (kind, name)
    assert [r["kind"] for r in columns.records] == ["event"]
    assert fast.malformed == slow.malformed == 3
    assert fast.offset == slow.offset == path.stat().st_size
    assert np.isinf(columns.columns["train"]["attention_score"][300])


def test_one_rule_for_malformed_records_in_every_reader(tmp_path: Path) -> None:
    """A step that is not an integer, or a loss that is not a finite number, is malformed for all readers."""
    from trainer.rundir import parse_record

    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    for step in range(1, 6):
        writer.write("train", step, loss=1.0 / step, attention_score=0.1)
    writer.close()
    bad = [b'{"t": 1, "kind": "train", "step": true, "loss": 0.5}', b'{"t": 1, "kind": "train", "step": "7", "loss": 0.5}',
           b'{"t": 1, "kind": "train", "step": null, "loss": 0.5}', b'{"t": 1, "kind": "train", "step": 8, "loss": null}',
           b'{"t": 1, "kind": "train", "step": 8, "loss": Infinity}', b'{"t": 1, "kind": "train", "step": 8, "loss": true}',
           b'{"t": 1, "kind": "val", "step": 8, "loss": "0.5"}', b'{"t": 1, "kind": "event", "step": 2.5}']
    with open(path, "ab") as handle:
        handle.write(b"\n".join(bad) + b"\n")
    assert all(parse_record(line) is None for line in bad)
    slow = MetricsReader(path)
    assert [r["step"] for r in slow.read_new()] == [1, 2, 3, 4, 5] and slow.malformed == len(bad)
    fast = MetricsReader(path)
    columns = fast.read_new_columns({"train": ("step", "loss"), "val": ("step", "loss")})
    assert columns.columns["train"]["step"].tolist() == [1, 2, 3, 4, 5] and len(columns.columns["val"]["step"]) == 0
    assert fast.malformed == len(bad) and columns.records == []
