"""Kill it, fill the disk, hand it foreign files: nothing recorded is lost, nothing hostile runs."""

from __future__ import annotations

import asyncio
import errno
import os
import pickle
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, tiny_config, voxtop
from reliability_helpers import kill_once, new_kill_run, run_command, temp_files
from trainer.rundir import (INJECT_WRITE_ERROR_ENV, MetricsReader, MetricsWriter, RunDir, atomic_write,
                            current_history, read_metrics)

KILL_CONFIG = {"train": {"max_steps": 500, "log_every_steps": 1},
               "checkpoint": {"every_steps": 1, "max_to_keep": 2, "keep_best": 1}}


def records(run: RunDir, kind: str) -> list[dict]:
    return [r for r in read_metrics(run.metrics_path) if r["kind"] == kind]


# --- kill anywhere ----------------------------------------------------------------------


async def runs_screen_state(runs: Path, name: str) -> str:
    """The state the Runs screen shows for run `name`."""
    from textual.widgets import DataTable

    from tui.app import create_app
    from tui_helpers import FakeSampler, wait_for

    app = create_app(runs.parent / "datasets", runs, gpu_sampler=FakeSampler)
    async with app.run_test(size=(100, 24)) as pilot:
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        row = [str(cell) for cell in table.get_row_at(0)]
        assert row[0] == name
        return row[1]


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_resumes(tmp_path: Path) -> None:
    """Six SIGKILLs (seeded delays, inside a checkpoint write, at rotation), each followed by a resume."""
    runs = tmp_path / "runs"
    run = new_kill_run(runs, tiny_config(tmp_path, **KILL_CONFIG))
    rng = random.Random(9)
    reports = []
    for mode in ("random", "checkpoint_write", "random", "rotation", "random", "random"):
        report = kill_once(run, mode, rng, max_delay_s=3.0)
        reports.append(report)
        assert report.state == "stale", report
        assert report.malformed == 0, report
        assert report.records_lost == [], report
        if len(reports) > 1 and reports[-2].checkpoints:  # the kill's trainer resumed from the newest
            assert report.resumed_from == reports[-2].checkpoints[-1], report
        if report.checkpoints:
            assert len(report.checkpoints) <= 3, report  # rotation ran: two newest plus the best
    assert reports[-1].checkpoints, "no checkpoint was ever written; the kills came too early"
    assert asyncio.run(runs_screen_state(runs, run.name)) == "not responding"  # the contract's `stale`, in words

    # The pid in status.json now belongs to another live process (this one): still stale,
    # `stop` signals nobody, and resume works, because the lock decides, not the pid.
    from trainer.launch import stop

    run.write_status(state="running", pid=os.getpid(), pgid=os.getpgid(0), host=socket.gethostname())
    assert run.effective_state() == "stale"
    assert stop(run) is False and stop(run, kill=True) is False

    from trainer import config as config_mod

    newest = run.checkpoints()[-1].step
    config = config_mod.load(run.config_path)
    config.train.max_steps = newest + 2  # let the last resume finish soon
    run.config_path.write_text(config_mod.dumps(config))
    result = voxtop("resume", run.name, runs=runs, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert records(run, "start")[-1]["resumed_from"] == newest
    assert run.read_status()["state"] == "finished"
    assert temp_files(run) == []  # the resume swept what the kills left half-written
    history = current_history(read_metrics(run.metrics_path))
    assert [r["step"] for r in history if r["kind"] == "train"] == list(range(1, newest + 3))


# --- disk full, I/O errors ------------------------------------------------------------------


def test_injected_errors_cut_a_metrics_line_back_and_leave_no_temp_file(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    writer.write("train", 1, loss=1.0)
    monkeypatch.setenv(INJECT_WRITE_ERROR_ENV, "metrics:ENOSPC@2")
    with pytest.raises(OSError) as failed:
        writer.write("train", 2, loss=0.9)  # half the line reaches the file, then the disk is full
    assert failed.value.errno == errno.ENOSPC
    writer.write("event", 1, level="info", code="x", message="still step 1")  # below @2: written
    monkeypatch.delenv(INJECT_WRITE_ERROR_ENV)
    writer.write("train", 3, loss=0.8)
    reader = MetricsReader(path)
    assert [(r["kind"], r["step"]) for r in reader.read_new()] == [("train", 1), ("event", 1), ("train", 3)]
    assert reader.malformed == 0 and not reader._partial

    target = tmp_path / "checkpoints" / "step-00000004.pt"
    target.parent.mkdir()
    target.write_bytes(b"old")
    monkeypatch.setenv(INJECT_WRITE_ERROR_ENV, "checkpoint:EIO@4")
    with pytest.raises(OSError) as failed:
        atomic_write(target, lambda handle: handle.write(b"new" * 1000))
    assert failed.value.errno == errno.EIO
    assert target.read_bytes() == b"old" and os.listdir(target.parent) == [target.name]
    atomic_write(target.with_name("step-00000003.pt"), lambda handle: handle.write(b"fine"))  # below @4


def test_status_falls_back_to_an_in_place_rewrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = RunDir(tmp_path / "run")
    run.make_folders()
    run.write_status(state="running", pid=1)
    monkeypatch.setenv(INJECT_WRITE_ERROR_ENV, "status:ENOSPC")
    with pytest.raises(OSError):
        run.write_status(state="failed")
    run.force_status(state="failed", error="boom")
    assert run.read_status()["state"] == "failed" and run.read_status()["pid"] == 1
    assert temp_files(run) == [] and not list(run.path.glob(".status.json.tmp-*"))


def trainer_with_fault(tmp_path: Path, fault: str, **sections: dict) -> tuple[RunDir, subprocess.CompletedProcess]:
    """Prepare a tiny run and train it with `fault` injected; the trainer must end within the timeout."""
    from trainer import config as config_mod
    from trainer.launch import prepare_run

    merged = {"train": {"max_steps": 6}, "checkpoint": {"every_steps": 2, "max_to_keep": 5}}
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    tmp_path.mkdir(parents=True, exist_ok=True)
    run = prepare_run(tmp_path / "runs", config_mod.load(tiny_config(tmp_path, **merged)))
    result = run_command([sys.executable, "-m", "trainer", str(run.path)], ROOT, timeout_s=300,
                         env={INJECT_WRITE_ERROR_ENV: fault})
    return run, result


def assert_failed_cleanly(run: RunDir, result: subprocess.CompletedProcess, message: str,
                          metrics_written: bool = True) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    status = run.read_status()
    assert status["state"] == "failed" and message in status["error"], status
    reader = MetricsReader(run.metrics_path)
    found = reader.read_new()
    assert reader.malformed == 0 and not reader._partial
    if metrics_written:
        assert found[-1] == {**found[-1], "kind": "end", "reason": "failed"}
        errors = [r for r in found if r["kind"] == "event" and r["level"] == "error"]
        assert errors and message in errors[-1]["message"]
    assert temp_files(run) == []
    from trainer import checkpoints as ckpt

    for found_checkpoint in run.checkpoints():
        assert ckpt.load(found_checkpoint.path)["progress"]["step"] == found_checkpoint.step


@pytest.mark.slow
@pytest.mark.parametrize("fault, kept", [
    ("checkpoint:ENOSPC@4", [2]),   # the step-4 checkpoint never appears; step 2 stays whole
    ("alignment:EIO@4", [2, 4]),    # the step-4 checkpoint was complete before its picture failed
])
def test_write_errors_end_the_run_as_failed_with_earlier_checkpoints_intact(
        tmp_path: Path, fault: str, kept: list[int]) -> None:
    run, result = trainer_with_fault(tmp_path, fault)
    reason = "No space left on device" if "ENOSPC" in fault else "Input/output error"
    assert_failed_cleanly(run, result, reason)
    assert [c.step for c in run.checkpoints()] == kept
    if "ENOSPC" in fault:
        assert "free space on the disk" in run.read_status()["error"]
    assert max(r["step"] for r in records(run, "train")) == 4


@pytest.mark.slow
def test_unwritable_metrics_still_end_with_failed_status(tmp_path: Path) -> None:
    run, result = trainer_with_fault(tmp_path, "metrics:EIO@4")
    assert_failed_cleanly(run, result, "Input/output error", metrics_written=False)
    assert max(r["step"] for r in records(run, "train")) == 3  # the step-4 line was cut back off
    assert "could not record the failure in metrics.jsonl" in result.stderr


@pytest.mark.slow
def test_unwritable_status_still_ends_the_run(tmp_path: Path) -> None:
    """status.json refuses atomic writes: the in-place fallback says failed; refusing both, metrics do."""
    run, result = trainer_with_fault(tmp_path, "status:ENOSPC")
    assert_failed_cleanly(run, result, "No space left on device")

    run, result = trainer_with_fault(tmp_path / "again", "status:ENOSPC,status-in-place:ENOSPC")
    assert result.returncode == 1
    assert "could not record the failure in status.json" in result.stderr
    assert records(run, "end")[-1]["reason"] == "failed"
    assert run.effective_state() == "stale"  # status.json still says `starting`; no trainer holds the lock


# --- one run, one trainer: pid reuse ---------------------------------------------------------


def test_a_recycled_pid_is_neither_running_nor_signalled(tmp_path: Path) -> None:
    from trainer.launch import stop

    run = RunDir(tmp_path / "run")
    run.make_folders()
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        run.write_status(state="running", pid=bystander.pid, pgid=bystander.pid, host=socket.gethostname())
        assert run.effective_state() == "stale"
        assert stop(run) is False and stop(run, kill=True) is False
        assert bystander.poll() is None  # not signalled
    finally:
        bystander.kill()
        bystander.wait()


# --- untrusted files ----------------------------------------------------------------------


class Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def evil_file(tmp_path: Path, marker: Path) -> Path:
    """A file shaped like a checkpoint whose unpickling would create `marker`."""
    path = tmp_path / "foreign" / "step-00000100.pt"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as handle:
        pickle.dump({"model": {}, "optimizer": Exploit(marker), "progress": {"step": 100}, "rng": {}}, handle)
    return path


def test_checkpoint_loading_refuses_pickled_code(tmp_path: Path) -> None:
    from trainer.checkpoints import CheckpointError, load

    marker = tmp_path / "pwned"
    with pytest.raises(CheckpointError, match="refusing to load .*step-00000100.pt: it is not a plain "
                                              "checkpoint.*nothing in it was run"):
        load(evil_file(tmp_path, marker))
    assert not marker.exists()


@pytest.mark.slow
def test_resume_from_a_foreign_malicious_checkpoint_runs_nothing(tmp_path: Path) -> None:
    from trainer import config as config_mod
    from trainer.launch import prepare_run

    runs = tmp_path / "runs"
    run = prepare_run(runs, config_mod.load(tiny_config(tmp_path)))
    marker = tmp_path / "pwned"
    evil = evil_file(tmp_path, marker)
    result = voxtop("resume", run.name, "--checkpoint", str(evil), runs=runs)
    assert result.returncode == 1
    assert not marker.exists()
    status = run.read_status()
    assert status["state"] == "failed" and "refusing to load" in status["error"] and str(evil) in status["error"]
    assert "refusing to load" in result.stdout + result.stderr
    assert records(run, "train") == []


def test_no_shell_strings_anywhere() -> None:
    """Every process is started from an argument list; nothing goes through a shell."""
    offenders = []
    for folder in ("tui", "trainer", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for needle in ("shell=True", "os.system(", "os.popen(", "commands.getoutput"):
                if needle in text:
                    offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


def test_delete_only_removes_run_folders_directly_inside_the_runs_folder(tmp_path: Path) -> None:
    from tui.screens.runs import is_deletable_run

    runs = tmp_path / "runs"
    real = runs / "voice_20240101_000000"
    real.mkdir(parents=True)
    (real / "config.toml").write_text("")
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "config.toml").write_text("")
    (runs / "link_20240101_000000").symlink_to(outside)
    nested = real / "checkpoints"
    nested.mkdir()
    (nested / "config.toml").write_text("")
    assert is_deletable_run(runs, real)
    assert not is_deletable_run(runs, runs / "link_20240101_000000")
    assert not is_deletable_run(runs, runs / ".." / "precious")
    assert not is_deletable_run(runs, runs)
    assert not is_deletable_run(runs, nested)
    assert not is_deletable_run(runs, runs / "nothing")


def test_an_unreadable_status_reads_as_no_status(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.make_folders()
    run.status_path.mkdir()  # unreadable even for root (chmod 000 is not)
    assert run.read_status() is None and run.effective_state() == "unknown"
    run.status_path.rmdir()
    run.status_path.write_bytes(b"[" * 100_000)  # nested past the recursion limit
    assert run.read_status() is None
