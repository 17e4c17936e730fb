"""Two training processes (DDP, gloo, CPU) through the same launcher the TUI uses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from conftest import ROOT, tiny_config, voxtop, wait_for
from trainer import config as cfg
from trainer.launch import prepare_run, start_detached
from trainer.rundir import RunDir, read_metrics

pytestmark = pytest.mark.slow

TWO = {"device": {"nproc": 2}, "train": {"batch_size": 2, "max_steps": 8, "log_every_steps": 2}}


def prepared(tmp_path: Path, **sections) -> RunDir:
    merged = {**TWO, **sections}
    return prepare_run(tmp_path / "runs", cfg.load(tiny_config(tmp_path, **merged)))


def records(run: RunDir, kind: str) -> list[dict]:
    return [r for r in read_metrics(run.metrics_path) if r["kind"] == kind]


def test_two_processes_one_run_directory_rank_zero_writes(tmp_path: Path) -> None:
    run = prepared(tmp_path)
    process = start_detached(run)
    assert process.wait(timeout=300) == 0, run.log_path.read_text()
    start = records(run, "start")[0]
    assert start["world_size"] == 2
    train_steps = [r["step"] for r in records(run, "train")]
    assert train_steps == [2, 4, 6, 8]  # once each: only rank 0 writes
    assert len(records(run, "end")) == 1 and records(run, "end")[0]["reason"] == "finished"
    assert [c.step for c in run.checkpoints()] == [3, 6, 8]
    status = run.read_status()
    assert status["state"] == "finished" and status["pid"] == process.pid
    log = run.log_path.read_text()
    assert log.count("run finished at step 8") == 1


def test_losses_are_averaged_over_ranks(tmp_path: Path) -> None:
    script = tmp_path / "reduce.py"
    script.write_text(
        "import sys, torch\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from trainer.distributed import ranks_from_env, init, shutdown\n"
        "ranks = ranks_from_env(); init(ranks, torch.device('cpu'))\n"
        "acc = torch.tensor([1.0 + ranks.rank * 2.0], dtype=torch.float64)\n"
        "ranks.sum_(acc)\n"
        "stop = ranks.any([ranks.rank == 1, False], torch.device('cpu'))\n"
        "print(f'rank{ranks.rank} mean={acc.item() / ranks.world_size} stop={stop}', flush=True)\n"
        "shutdown()\n")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc-per-node=2", str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "rank0 mean=2.0 stop=[True, False]" in result.stdout
    assert "rank1 mean=2.0 stop=[True, False]" in result.stdout


def test_stop_and_resume_with_two_processes(tmp_path: Path) -> None:
    run = prepared(tmp_path, train={"batch_size": 2, "max_steps": 40, "log_every_steps": 2},
                   checkpoint={"every_steps": 100})
    process = start_detached(run)
    wait_for(lambda: len(records(run, "train")) >= 2, timeout=200)
    from trainer.launch import stop

    assert stop(run)
    assert process.wait(timeout=200) == 0
    end = records(run, "end")[-1]
    assert end["reason"] == "stopped" and end["step"] % 2 == 0  # agreed at a log boundary
    assert run.read_status()["state"] == "stopped" and run.checkpoints()[-1].step == end["step"]
    result = voxtop("resume", str(run.path), runs=tmp_path / "runs", timeout=600)
    assert result.returncode == 0, result.stdout[-2000:]
    assert records(run, "start")[-1]["resumed_from"] == end["step"]
    assert run.read_status()["state"] == "finished"


def test_a_failing_rank_fails_the_run_with_its_error(tmp_path: Path) -> None:
    run = prepared(tmp_path)
    process = start_detached(run, env={"VOXTOP_INJECT_CRASH": "1:3"})
    assert process.wait(timeout=300) == 1
    status = run.read_status()
    assert status["state"] == "failed"
    assert status["error"] == "rank 1: RuntimeError: injected failure in rank 1 at step 3 (VOXTOP_INJECT_CRASH)"
    assert records(run, "end")[-1]["reason"] == "failed"


def test_a_killed_rank_fails_the_run(tmp_path: Path) -> None:
    run = prepared(tmp_path, train={"batch_size": 2, "max_steps": 200, "log_every_steps": 2})
    process = start_detached(run)
    wait_for(lambda: len(records(run, "train")) >= 1, timeout=200)
    workers = [p for p in psutil.Process(process.pid).children(recursive=True) if "RANK" in p.environ()]
    assert len(workers) == 2
    victim = next(p for p in workers if p.environ()["RANK"] == "1")
    os.kill(victim.pid, signal.SIGKILL)
    assert process.wait(timeout=300) == 1
    status = run.read_status()
    assert status["state"] == "failed" and status["error"]
    assert records(run, "end")[-1]["reason"] == "failed"
