"""The trainer as a user runs it: `voxtop train`, `python -m trainer`, stop, resume, crash, kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from conftest import ROOT, only_run, tiny_config, voxtop, wait_for
from trainer.rundir import RunDir, read_metrics

pytestmark = pytest.mark.slow


def records(run: Path, kind: str) -> list[dict]:
    return [r for r in read_metrics(run / "metrics.jsonl") if r["kind"] == kind]


def start_trainer(run: Path, *args: str) -> subprocess.Popen[bytes]:
    log = open(run / "train.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "trainer", str(run), *args], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def prepare(tmp_path: Path, runs: Path, **sections: dict) -> RunDir:
    from trainer import config as cfg
    from trainer.launch import prepare_run

    return prepare_run(runs, cfg.load(tiny_config(tmp_path, **sections)))


def test_config_error_at_launch_leaves_no_run_directory(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    config = tiny_config(tmp_path, train={"batch_size": 0})
    result = voxtop("train", str(config), runs=runs)
    assert result.returncode == 1
    assert "train.batch_size: 0 is out of range: allowed 1 to 4096" in result.stderr
    result = voxtop("train", str(config), "--set", "train.batch_size=2", "--set", "trian.x=1", runs=runs)
    assert result.returncode == 1 and "unknown section [trian]" in result.stderr
    assert not runs.exists() or not any(runs.iterdir())


def test_invalid_dataset_refused_before_the_run_exists(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    result = voxtop("train", str(tiny_config(tmp_path, data={"dataset": str(bad)})), runs=tmp_path / "runs")
    assert result.returncode == 1 and "metadata.csv" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_short_run_writes_the_whole_contract(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = voxtop("train", str(tiny_config(tmp_path)), "--name", "tiny", runs=runs)
    assert result.returncode == 0, result.stdout + result.stderr
    run = only_run(runs)
    assert run.name.startswith("tiny_")
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 6 and status["total_steps"] == 6
    for key in ("pid", "pgid", "host", "epoch", "started_at", "updated_at", "error"):
        assert key in status
    kinds = {r["kind"] for r in read_metrics(run / "metrics.jsonl")}
    assert kinds >= {"start", "train", "val", "checkpoint", "alignment", "end"}
    train = records(run, "train")
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]
    for r in train:
        for key in ("epoch", "loss", "loss_mel", "loss_gate", "loss_guided", "attention_score",
                    "grad_norm", "lr", "batch_size", "frames_per_s"):
            assert r[key] is not None, key
        assert 0 < r["attention_score"] <= 1
    assert train[-1]["loss"] < train[0]["loss"]  # it learns
    assert records(run, "end")[-1]["reason"] == "finished"
    steps = [r["step"] for r in records(run, "checkpoint")]
    assert steps == [3, 6] and "final" in records(run, "checkpoint")[-1]["tags"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000003.pt", "step-00000006.pt"]
    for step in steps:
        alignment = np.load(run / "alignments" / f"step-{step:08d}.npy")
        mel = np.load(run / "mels" / f"step-{step:08d}.npy")
        assert alignment.ndim == 2 and alignment.shape[1] == len("hello there.")
        assert mel.shape == (80, alignment.shape[0] * 2)  # r = model.frames_per_step = 2 frames a step
        audio, rate = soundfile.read(run / "samples" / f"step-{step:08d}.wav")
        assert rate == 22050 and len(audio) > 0
    log = (run / "train.log").read_text()
    assert "epoch 1/100 step 1/6 loss" in log and "ETA" in log and "s/it" in log
    assert "run finished at step 6" in result.stdout  # echoed to the terminal too
    listing = json.loads(voxtop("checkpoints", run.name, "--json", runs=runs).stdout)
    assert [row["step"] for row in listing] == [6, 3] and listing[0]["val_loss"] is not None
    summary = json.loads(voxtop("runs", "--json", runs=runs).stdout)
    assert summary[0]["state"] == "finished" and summary[0]["train_loss"] == train[-1]["loss"]


def test_sigterm_saves_and_ends_cleanly_then_resume_is_exact(tmp_path: Path) -> None:
    """Stop mid-run, resume, and get exactly the losses of an uninterrupted run."""
    sections = {"train": {"max_steps": 9}, "checkpoint": {"every_steps": 100}}
    straight = prepare(tmp_path, tmp_path / "a", **sections)
    assert start_trainer(straight.path).wait(timeout=300) == 0
    reference = {r["step"]: r["loss"] for r in records(straight.path, "train")}
    assert sorted(reference) == list(range(1, 10))

    run = prepare(tmp_path, tmp_path / "b", **sections)
    process = start_trainer(run.path)
    wait_for(lambda: len(records(run.path, "train")) >= 3)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0
    stopped_at = records(run.path, "end")[-1]
    assert stopped_at["reason"] == "stopped" and run.read_status()["state"] == "stopped"
    assert any(e["code"] == "signal" for e in records(run.path, "event"))
    assert run.checkpoints()[-1].step == stopped_at["step"] < 9

    result = voxtop("resume", str(run.path), runs=tmp_path / "b")
    assert result.returncode == 0, result.stderr
    assert records(run.path, "start")[-1]["resumed_from"] == stopped_at["step"]
    resumed = {r["step"]: r["loss"] for r in records(run.path, "train")}
    assert resumed == reference  # bit-for-bit: same batches, same dropout, same Adam state
    assert run.read_status()["state"] == "finished"
    from trainer.rundir import MetricsColumns, MetricsReader

    reader, size = MetricsReader(run.metrics_path), run.metrics_path.stat().st_size
    reader._read_index(np, size, MetricsColumns({"train": ("step", "loss")}))
    assert reader.offset == size  # metrics.index covers both sessions' records: attach needs no parsing


def test_rotation_keeps_newest_best_and_backups(tmp_path: Path) -> None:
    run = prepare(tmp_path, tmp_path / "runs", train={"max_steps": 8},
                  checkpoint={"every_steps": 1, "max_to_keep": 2, "keep_best": 1, "backup_every_steps": 4})
    assert start_trainer(run.path).wait(timeout=300) == 0
    val = {r["step"]: r["val_loss"] for r in records(run.path, "checkpoint")}
    best = min(val, key=val.get)
    kept = {c.step for c in run.checkpoints()}
    assert kept == {7, 8, 4, best}
    tags = {r["step"]: r["tags"] for r in records(run.path, "checkpoint")}
    assert "backup" in tags[4] and "backup" in tags[8]


def test_rotation_rules_never_delete_newest_or_best() -> None:
    from trainer.checkpoints import RotationRules, to_delete
    from trainer.rundir import CheckpointFile

    files = [CheckpointFile(step, Path(f"step-{step:08d}.pt"), 0.0, 1) for step in range(10, 110, 10)]
    val = {step: 5.0 - step / 100 for step in range(10, 110, 10)}
    val[30] = 0.1  # the best is old
    deleted = {c.step for c in to_delete(files, val, RotationRules(2, 1, 50))}
    assert deleted == {10, 20, 40, 60, 70, 80}
    assert to_delete(files, val, RotationRules(0, 1, 0)) == []  # 0 keeps everything


def test_crash_ends_as_failed_with_the_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 this is not a checkpoint")  # a zip's first bytes: past the check made before the run
    runs = tmp_path / "runs"
    result = voxtop("train", str(tiny_config(tmp_path, train={"pretrained": str(junk)})), runs=runs)
    assert result.returncode == 1
    run = RunDir(only_run(runs))
    status = run.read_status()
    assert status["state"] == "failed" and "junk.pt" in status["error"] and "PretrainedError" in status["error"]
    assert records(run.path, "end")[-1]["reason"] == "failed"
    assert "Traceback" in run.log_path.read_text()


def test_second_trainer_on_the_same_run_is_refused(tmp_path: Path) -> None:
    run = prepare(tmp_path, tmp_path / "runs", train={"max_steps": 30})
    first = start_trainer(run.path)
    try:
        wait_for(lambda: run.is_locked())
        second = subprocess.run([sys.executable, "-m", "trainer", str(run.path)], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "already being trained by pid" in second.stderr
        assert run.read_status()["state"] in ("starting", "running")
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)


def test_sigkill_mid_run_leaves_only_loadable_checkpoints(tmp_path: Path) -> None:
    run = prepare(tmp_path, tmp_path / "runs", train={"max_steps": 12}, checkpoint={"every_steps": 1})
    process = start_trainer(run.path)
    wait_for(lambda: len(run.checkpoints()) >= 2, timeout=200, interval=0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert run.effective_state() == "stale"
    listed = run.checkpoints()
    assert listed
    for found in listed:
        payload = torch.load(found.path, map_location="cpu", weights_only=False)
        assert payload["progress"]["step"] == found.step
    # and the run resumes from the newest
    result = voxtop("resume", str(run.path), runs=tmp_path / "runs", timeout=400)
    assert result.returncode == 0, result.stderr
    assert records(run.path, "start")[-1]["resumed_from"] == listed[-1].step


def test_resume_from_an_older_checkpoint_overwrites_nothing(tmp_path: Path) -> None:
    from trainer.rundir import current_history

    run = prepare(tmp_path, tmp_path / "runs")
    assert start_trainer(run.path).wait(timeout=300) == 0
    original = (run.path / "checkpoints" / "step-00000006.pt").read_bytes()
    result = voxtop("resume", str(run.path), "--checkpoint", "checkpoints/step-00000003.pt",
                    runs=tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    superseded = list((run.path / "checkpoints").glob("superseded-*/checkpoints-step-00000006.pt"))
    assert len(superseded) == 1 and superseded[0].read_bytes() == original
    assert [c.step for c in run.checkpoints()] == [3, 6]
    history = current_history(read_metrics(run.metrics_path))
    assert [r["step"] for r in history if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_foreground_voxtop_train_saves_and_stops_the_trainer(tmp_path: Path, signum: int) -> None:
    """A closed tmux pane (SIGHUP) or a plain kill of `voxtop train` must not orphan the trainer."""
    from conftest import VOXTOP

    runs = tmp_path / "runs"
    config = tiny_config(tmp_path, train={"max_steps": 400}, checkpoint={"every_steps": 100})
    cli = subprocess.Popen([*VOXTOP, "--runs", str(runs), "train", str(config)], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    run = Path(wait_for(lambda: runs.is_dir() and next(iter(runs.iterdir()), None)))
    wait_for(lambda: (run / "metrics.jsonl").exists() and len(records(run, "train")) >= 2)
    cli.send_signal(signum)  # to the command alone, not its process group
    assert cli.wait(timeout=120) == 0
    end = records(run, "end")[-1]
    assert end["reason"] == "stopped" and json.loads((run / "status.json").read_text())["state"] == "stopped"
    assert RunDir(run).checkpoints()[-1].step == end["step"] < 400
    assert "received: saving a checkpoint and stopping" in (run / "train.log").read_text()
