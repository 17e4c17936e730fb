"""Following a run: only new bytes, partial and malformed lines, truncation, log tail, watchdog."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from trainer.rundir import RunDir
from tui.follow import CheckpointWatcher, RunFollower, read_log_tail
from tui.screens.monitor_data import MonitorModel, smoothing_step
from tui.summary import RunsIndex, estimate, PresetReference
from tui_helpers import FakeRun, typical_run


def train_line(step: int, loss: float) -> str:
    return json.dumps({"t": 1.0 + step, "kind": "train", "step": step, "loss": loss,
                       "attention_score": 0.2}) + "\n"


def test_partial_line_waits_for_its_end(tmp_path: Path) -> None:
    fake = FakeRun(tmp_path, hold_lock=False, state="finished")
    follower = RunFollower(fake.run)
    line = train_line(10, 1.5)
    with open(fake.run.metrics_path, "a") as handle:
        handle.write(line[:20])
    follower.poll()
    assert follower.history.train_loss.count == 0
    with open(fake.run.metrics_path, "a") as handle:
        handle.write(line[20:])
    assert follower.poll() is True
    assert follower.history.train_loss.values.tolist() == [1.5]


def test_malformed_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    fake = FakeRun(tmp_path, hold_lock=False, state="finished")
    with open(fake.run.metrics_path, "a") as handle:
        handle.write(train_line(10, 1.0) + "{not json\n" + "[1, 2]\n" + train_line(20, 0.9))
    follower = RunFollower(fake.run)
    follower.poll()
    assert follower.history.train_loss.steps.tolist() == [10, 20]
    assert follower.malformed == 2


def test_growth_while_following_reads_only_new_records(tmp_path: Path) -> None:
    fake = FakeRun(tmp_path, hold_lock=False, state="finished")
    follower = RunFollower(fake.run)
    stop = threading.Event()

    def writer() -> None:
        for step in range(1, 501):
            with open(fake.run.metrics_path, "a") as handle:
                handle.write(train_line(step, 1.0 / step))
        stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not stop.is_set():
        follower.poll()
    thread.join()
    follower.poll()
    assert follower.history.train_loss.steps.tolist() == list(range(1, 501))
    assert follower.poll() is False  # nothing new: no change, no redraw


def test_truncated_metrics_file_is_read_again(tmp_path: Path) -> None:
    fake = FakeRun(tmp_path, hold_lock=False, state="finished")
    fake.run.metrics_path.write_text(train_line(1, 1.0) + train_line(2, 0.9))
    follower = RunFollower(fake.run)
    follower.poll()
    fake.run.metrics_path.write_text(train_line(7, 0.5))
    follower.poll()
    assert follower.history.train_loss.steps.tolist() == [7]


def test_log_tail_reads_only_the_end(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("".join(f"line {i}\n" for i in range(10_000)))
    lines = read_log_tail(log, max_lines=5, max_bytes=200)
    assert lines == [f"line {i}" for i in range(9995, 10_000)]
    assert read_log_tail(tmp_path / "missing.log") == []


def test_checkpoint_watcher_sees_new_files(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    seen = threading.Event()
    watcher = CheckpointWatcher(folder, seen.set)
    assert watcher.start() in ("native", "polling")
    try:
        (folder / "step-00000010.pt").write_bytes(b"x")
        assert seen.wait(5.0)
    finally:
        watcher.stop()


def test_model_reports_no_change_when_idle(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    model = MonitorModel(fake.run)
    view = model.update(60, 60, 0.6, "alignment")
    assert view is not None and view.step == 400 and view.total_steps == 1000
    assert view.picture is not None and view.picture.shape == (20, 60)  # text positions x decoder steps
    assert [c.step for c in view.checkpoints] == [200, 400]
    assert model.update(60, 60, 0.6, "alignment") is None
    assert model.update(60, 60, 0.8, "alignment") is not None  # smoothing changed: new view
    mel = model.update(60, 60, 0.8, "mel")
    assert mel is not None and mel.picture.shape == (80, 60) and "predicted mel" in mel.picture_title
    fake.release()


def test_model_of_a_long_run_redraws_fast(tmp_path: Path) -> None:
    fake = FakeRun(tmp_path, hold_lock=False, state="finished")
    steps = np.arange(1, 300_001)
    with open(fake.run.metrics_path, "w") as handle:
        handle.writelines(f'{{"t":{s},"kind":"train","step":{s},"loss":{1 + 1 / s},"attention_score":0.5}}\n'
                          for s in steps)
    model = MonitorModel(fake.run)
    model.update(100, 100, 0.6, "alignment")  # the first read parses the whole file
    started = time.perf_counter()
    view = model.update(100, 100, 0.9, "alignment")  # a redraw with new smoothing
    assert time.perf_counter() - started < 1.0
    assert view is not None and len(view.loss.lines[0].steps) <= 200


def test_smoothing_ladder_is_bounded() -> None:
    assert smoothing_step(0.6, 1) == 0.8
    assert smoothing_step(0.0, -1) == 0.0
    assert smoothing_step(0.99, 1) == 0.99


def test_runs_index_summarises_from_status_and_tail(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    summary = RunsIndex(tmp_path).refresh()[0]
    assert summary.state == "running" and summary.step == 400 and summary.total_steps == 1000
    assert summary.train_loss is not None and summary.val_loss is not None and summary.checkpoints == 2
    fake.release()
    assert RunsIndex(tmp_path).refresh()[0].state == "stale"  # running status, trainer gone


def test_estimates_use_earlier_runs_of_the_preset() -> None:
    lines = estimate(150, 0.05, 1.0, 32, 10, 0, 5, 3, 1000, "tiny", PresetReference(10 * 2**20, 2.0, "x"))
    assert lines["steps/epoch"] == "5" and lines["total steps"] == "50"
    assert "10.0 MB" in lines["disk"] and "0:00:25" in lines["time"]
    assert "typical size" in estimate(150, 0.05, 1.0, 32, 10, 0, 5, 3, 1000, "full", PresetReference())["disk"]
