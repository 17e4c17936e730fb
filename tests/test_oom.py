"""Out-of-memory back-off (through fault injection on CPU) and device/precision selection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT, tiny_config
from trainer import config as cfg
from trainer.cuda.device import place, resolve_precision, select_device
from trainer.cuda.oom import INJECT_ENV, is_oom_error, smaller_batch
from trainer.rundir import read_metrics


def test_oom_recognised_like_lightning_and_accelerate() -> None:
    assert is_oom_error(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_oom_error(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert is_oom_error(RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear"))
    assert is_oom_error(RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: you tried"))
    assert not is_oom_error(RuntimeError("size mismatch"))
    assert not is_oom_error(ValueError("CUDA out of memory."))


def test_batch_sizes_shrink_to_one_then_stop() -> None:
    sizes = [32]
    while (nxt := smaller_batch(sizes[-1])) is not None:
        sizes.append(nxt)
    assert sizes[:4] == [32, 24, 18, 13] and sizes[-1] == 1 and sizes == sorted(sizes, reverse=True)


def run_with_injection(tmp_path: Path, limit: int, **train) -> tuple[int, Path]:
    from trainer.launch import prepare_run

    run = prepare_run(tmp_path / "runs", cfg.load(tiny_config(tmp_path, train={"max_steps": 5, **train})))
    result = subprocess.run([sys.executable, "-m", "trainer", str(run.path)], cwd=ROOT, timeout=300,
                            env={**os.environ, INJECT_ENV: str(limit)}, capture_output=True, text=True)
    return result.returncode, run.path


@pytest.mark.slow
def test_oom_backs_off_and_carries_on_from_the_same_step(tmp_path: Path) -> None:
    code, run = run_with_injection(tmp_path, limit=2, batch_size=4)
    assert code == 0, (run / "train.log").read_text()
    metrics = read_metrics(run / "metrics.jsonl")
    backoffs = [r for r in metrics if r["kind"] == "event" and r["code"] == "oom_backoff"]
    assert [b["message"] for b in backoffs] == ["out of memory at batch 4 → 3", "out of memory at batch 3 → 2"]
    assert all(b["step"] == 0 for b in backoffs)  # no step was lost or skipped
    train = [r for r in metrics if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5] and {r["batch_size"] for r in train} == {2}
    assert [r for r in metrics if r["kind"] == "end"][-1]["reason"] == "finished"


@pytest.mark.slow
def test_oom_at_batch_one_gives_up_clearly(tmp_path: Path) -> None:
    code, run = run_with_injection(tmp_path, limit=0, batch_size=2)
    assert code == 1
    status = (run / "status.json").read_text()
    assert '"failed"' in status and "out of memory even with batch size 1" in status


def test_precision_and_device_on_cpu() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu)[0] == "fp32"
    precision, reason = resolve_precision("bf16", cpu)
    assert precision == "fp32" and "needs a CUDA GPU" in reason
    placement = place(cfg.from_dict({"device": {"accelerator": "cpu"}, "train": {"precision": "fp16"}}))
    assert placement.device == cpu and placement.precision == "fp32"
    assert not placement.grad_scaler().is_enabled()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_asking_for_cuda_without_a_gpu_says_so() -> None:
    with pytest.raises(RuntimeError, match="no CUDA GPU is visible"):
        select_device(cfg.from_dict({"device": {"accelerator": "cuda"}}))
