"""Following a run: only new bytes, partial and malformed lines, truncation, log tail, watchdog."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

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


def _curve_records(evaluations: int, seed: int, shape: str) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    for index in range(evaluations):
        step, x = (index + 1) * 100, index / evaluations
        for offset in (60, 40, 20):
            records.append({"kind": "train", "step": step - offset, "loss": 1 / (1 + index / 100) + rng.normal(0, 0.01),
                            "attention_score": 0.5})
        val = {"u": 0.5 + (x - 0.5) ** 2, "wave": 0.5 + 0.1 * np.sin(x * 12)}[shape] + rng.normal(0, 0.01)
        records.append({"kind": "val", "step": step, "loss": val, "attention_score": 0.5 - 0.4 * x})
        if index % 7 == 0:
            records.append({"kind": "checkpoint", "step": step, "val_loss": val, "tags": ["best"]})
    return records


def test_live_analysis_matches_analyse_of_the_whole_file() -> None:
    """Fed in chunks from the follower's arrays, the Monitor's analysis is trainer.overtrain.analyse's."""
    from trainer.overtrain import DetectorConfig, analyse
    from tui.follow import RunHistory
    from tui.run_analysis import LiveAnalysis

    for shape in ("u", "wave"):
        for seed, evaluations in ((0, 6), (1, 80), (2, 400)):
            records = _curve_records(evaluations, seed, shape)
            existing = {r["step"] for r in records if r["kind"] == "checkpoint" and r["step"] % 300}
            history, live = RunHistory(), LiveAnalysis(DetectorConfig())
            for begin in range(0, len(records), 37):
                history.add(records[begin:begin + 37])
                result = live.update(history.train_loss, history.val_loss, history.val_attention,
                                     history.checkpoint_records, existing)
            expected = analyse(records, DetectorConfig(), existing)
            for key in ("verdict", "minima", "onset_step", "candidates", "recommended", "tags"):
                assert result[key] == expected[key], (shape, seed, key)


def test_live_analysis_of_a_new_evaluation_feeds_the_detector_only_the_new_one(monkeypatch) -> None:
    """Following costs the new evaluations, not the run's length (counted, not timed)."""
    from trainer.overtrain import Detector
    from tui.follow import RunHistory
    from tui.run_analysis import LiveAnalysis

    fed: list[int] = []
    update = Detector.update
    monkeypatch.setattr(Detector, "update", lambda self, evaluation: fed.append(evaluation.step) or update(self, evaluation))
    records = _curve_records(10_000, 3, "u")
    existing = {r["step"] for r in records if r["kind"] == "checkpoint"}
    history, live = RunHistory(), LiveAnalysis()
    history.add(records[:-4])
    live.update(history.train_loss, history.val_loss, history.val_attention, history.checkpoint_records, existing)
    before = len(fed)
    history.add(records[-4:])
    result = live.update(history.train_loss, history.val_loss, history.val_attention,
                         history.checkpoint_records, existing)
    new_vals = [r["step"] for r in records[-4:] if r["kind"] == "val"]
    assert new_vals and fed[before:] == new_vals
    assert result["verdict"]["verdict"] in ("overtraining", "collapsed") and result["minima"]


def test_resume_supersedes_what_was_logged_past_its_checkpoint(tmp_path: Path) -> None:
    fake = FakeRun(tmp_path, hold_lock=False, state="finished")
    fake.start()
    fake.train(range(10, 101, 10))
    fake.val(100, 1.0)
    fake.checkpoint(50)
    fake.record("start", 50, epoch=0, resumed_from=50, device="cpu", world_size=1, precision="fp32",
                torch="2.x", batch_size=8)
    fake.train(range(60, 81, 10))
    follower = RunFollower(fake.run)
    follower.poll()
    assert follower.history.train_loss.steps.tolist() == [10, 20, 30, 40, 50, 60, 70, 80]
    assert follower.history.val_loss.count == 0


def test_charts_rebuild_on_new_records_at_most_every_interval_and_on_new_settings_at_once(tmp_path: Path) -> None:
    from tui.screens.monitor_data import CHART_INTERVAL_S

    fake = typical_run(tmp_path)
    now = [0.0]
    model = MonitorModel(fake.run, clock=lambda: now[0])
    first = model.update(60, 60, 0.6, "alignment")
    fake.train(range(410, 421, 10))
    now[0] += 1.0
    view = model.update(60, 60, 0.6, "alignment")
    assert view is not None and view.step == 420 and view.loss is first.loss  # progress moves, same chart
    fake.val(420, 0.5)
    now[0] += 1.0
    assert model.update(60, 60, 0.6, "alignment").loss is first.loss  # a val record waits too
    now[0] += CHART_INTERVAL_S
    fake.train(range(430, 431, 10))
    second = model.update(60, 60, 0.6, "alignment").loss
    assert second is not first.loss and second.lines[1].steps[-1] == 420  # both, once the interval is up
    now[0] += 0.5
    resized = model.update(70, 60, 0.6, "alignment").loss
    assert resized is not second and resized.lines[1].steps[-1] == 420  # a new width: at once
    assert model.update(70, 60, 0.8, "alignment").loss is not resized  # new smoothing: at once
    fake.release()


def test_the_step_rate_shows_from_the_first_train_record_after_a_start() -> None:
    from tui.follow import RunHistory

    history = RunHistory()
    history.add([{"t": 100.0, "kind": "start", "step": 0, "resumed_from": None}])
    assert history.steps_per_s() is None
    history.add([{"t": 110.0, "kind": "train", "step": 10, "loss": 1.0}])
    assert history.steps_per_s() == 1.0  # 10 steps since the start record
    history.add([{"t": 112.0, "kind": "train", "step": 20, "loss": 0.9}])
    assert history.steps_per_s() == 5.0  # then from the train records alone
    history.add([{"t": 200.0, "kind": "start", "step": 20, "resumed_from": 20},
                 {"t": 204.0, "kind": "train", "step": 30, "loss": 0.8}])
    assert history.steps_per_s() == 2.5  # a resume starts afresh from its own start record
