"""The run contract's queries: one answer for the Runs screen, `voxtop runs`, checkpoints, export and resume."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

from conftest import voxtop
from trainer.overtrain import DetectorConfig, analyse
from trainer.rundir import MetricsWriter, RunDir, create_run, index_path, read_metrics
from trainer.rundir.queries import (checkpoint_table, current_records, newest_records, run_summary,
                                    tail_records)
from tui.summary import RunsIndex


def long_run(root: Path, resume: bool = True) -> RunDir:
    """A finished run: train every step, val and a checkpoint every 20, a resume from 100 after step 130."""
    run = create_run(root, "q", "[data]\ndataset = \"x\"\n")
    writer = MetricsWriter(run.metrics_path)
    writer.write("start", 0, epoch=1, resumed_from=None)
    step, resumed = 0, False
    while step < 300:
        step += 1
        loss = 1.0 / math.sqrt(step) + (0.002 * (step - 200) if step > 200 else 0.0)
        writer.write("train", step, epoch=1, loss=loss, attention_score=0.1 + step / 1000)
        if step % 20 == 0:
            writer.write("val", step, epoch=1, loss=loss * 1.1, attention_score=0.05 + step / 2000)
            writer.write("checkpoint", step, path=f"checkpoints/step-{step:08d}.pt", val_loss=loss * 1.1,
                         tags=["best"])
            run.checkpoint_path(step).write_bytes(b"x")
        if resume and step == 130 and not resumed:  # killed after 130: the resume repeats 101-130
            writer.write("start", 100, epoch=1, resumed_from=100)
            step, resumed = 100, True
    writer.write("end", step, reason="finished")
    writer.close()
    run.write_status(state="finished", step=300, total_steps=300, epoch=1, started_at=1.0)
    return run


def test_summary_labels_train_and_val_figures_and_every_lister_agrees(tmp_path: Path) -> None:
    run = long_run(tmp_path)
    summary = run_summary(run)
    history = current_records(run.metrics_path)
    train = [r for r in history if r["kind"] == "train"][-1]
    val = [r for r in history if r["kind"] == "val"][-1]
    assert (summary.train_loss, summary.train_attention) == (train["loss"], train["attention_score"])
    assert (summary.val_loss, summary.val_attention) == (val["loss"], val["attention_score"])
    assert summary.attention == summary.val_attention and summary.checkpoints == 15
    assert RunsIndex(tmp_path).refresh() == [summary]  # the Runs screen
    listed = json.loads(voxtop("runs", "--json", runs=tmp_path).stdout)  # `voxtop runs`
    assert listed == [summary.as_json()]
    assert listed[0]["val_attention_score"] == val["attention_score"] != listed[0]["train_attention_score"]
    text = voxtop("runs", runs=tmp_path).stdout
    assert "VAL ATTN" in text.splitlines()[0] and f"{val['attention_score']:.3f}" in text


def test_newest_records_follow_the_resume_rule_reading_back_from_the_end(tmp_path: Path) -> None:
    run = create_run(tmp_path, "r", "")
    writer = MetricsWriter(run.metrics_path)
    writer.write("start", 0, resumed_from=None)
    for step in range(1, 11):
        writer.write("train", step, loss=float(step))
    writer.write("val", 10, loss=0.5)
    writer.write("start", 5, resumed_from=5)  # the val at 10 and train 6-10 are superseded
    writer.write("event", 5, level="info", code="resume", message="resumed")
    writer.close()
    partial = b'{"t": 1, "kind": "train", "st'  # being written
    with open(run.metrics_path, "ab") as handle:
        handle.write(partial)
    newest = newest_records(run.metrics_path)
    assert newest["train"]["step"] == 5 and "val" not in newest
    assert current_records(run.metrics_path)[-3]["step"] == 5
    records, offset = tail_records(run.metrics_path, 400)
    assert [r["kind"] for r in records][-2:] == ["start", "event"] and offset == run.metrics_path.stat().st_size - len(partial)


def test_checkpoint_rows_agree_with_the_full_analysis_with_or_without_the_index(tmp_path: Path) -> None:
    run = long_run(tmp_path / "a")
    existing = {c.step for c in run.checkpoints()}
    for gone in (20, 40):  # rotation deleted these
        run.checkpoint_path(gone).unlink()
        existing.discard(gone)
    expected = analyse(read_metrics(run.metrics_path), DetectorConfig(), existing=existing)
    table = checkpoint_table(run, DetectorConfig())
    assert [row.step for row in table.rows] == sorted(existing, reverse=True)
    assert table.recommended == expected["recommended"] and table.recommended_reason == expected["recommended_reason"]
    assert {row.step: row.tags for row in table.rows if row.tags} == {
        step: [t for t in tags if t != "best"] for step, tags in expected["tags"].items()
        if [t for t in tags if t != "best"]}
    assert all("best" not in row.tags for row in table.rows)
    plain = tmp_path / "b" / run.name
    shutil.copytree(run.path, plain)
    os.unlink(index_path(plain / "metrics.jsonl"))
    without = checkpoint_table(RunDir(plain), DetectorConfig())
    assert [(r.step, r.val_loss, r.tags) for r in without.rows] == [(r.step, r.val_loss, r.tags) for r in table.rows]
    listing = json.loads(voxtop("checkpoints", run.name, "--json", runs=run.path.parent).stdout)
    assert listing == [row.as_json() for row in table.rows]


def test_a_voxtop_run_as_a_run_source_answers_as_the_queries(tmp_path: Path) -> None:
    from trainer.rundir.source import RunSource, VoxtopRun, list_sources, open_run

    run = long_run(tmp_path)
    source = open_run(tmp_path, run.name)
    assert isinstance(source, RunSource) and isinstance(source, VoxtopRun) and source.path == run.path
    assert source.summary() == run_summary(run) and [s.name for s in list_sources(tmp_path)] == [run.name]
    assert source.checkpoint_table(DetectorConfig()) == checkpoint_table(run, DetectorConfig())
    assert source.state() == "finished" and source.status()["step"] == 300
    records = source.metrics_reader().read_new()
    alignment = {"kind": "alignment", "path": "alignments/step-00000300.npy", "mel": ""}
    assert records[0]["kind"] == "start" and source.picture_path(alignment, "alignment") == run.alignment_path(300)
    assert source.picture_path(alignment, "mel") is None
