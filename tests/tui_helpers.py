"""A fake trainer for TUI tests: writes a run directory in the real format, with fixed times.

The real trainer imports torch and takes seconds to start; the TUI only ever reads files,
so tests drive it with these writers (records, npy pictures, checkpoint files of
arbitrary bytes) and get deterministic screens.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from trainer import config as config_mod
from trainer.rundir import RunDir

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


class FakeRun:
    """A run directory written the way the trainer writes it."""

    def __init__(self, runs_root: Path, name: str = "demo_20231114_221320", *, dataset: str = "datasets/demo",
                 preset: str = "tiny", total_steps: int = 1000, state: str = "running", t0: float = T0,
                 hold_lock: bool = True):
        self.run = RunDir(Path(runs_root) / name)
        self.run.path.mkdir(parents=True)
        self.run.make_folders()
        config = config_mod.Config()
        config.data.dataset = dataset
        config.model.preset = preset
        self.run.config_path.write_text(config_mod.dumps(config), encoding="utf-8")
        self.t = t0
        self.total_steps = total_steps
        self.locked = False
        if hold_lock and state in ("starting", "running", "stopping"):
            self.run.acquire_lock()
            self.locked = True
        self.status(state=state, step=0, epoch=0, total_steps=total_steps, host=socket.gethostname(),
                    started_at=t0, pid=12345, pgid=12345, error=None)

    @property
    def path(self) -> Path:
        return self.run.path

    def status(self, **fields: Any) -> None:
        status = self.run.read_status() or {}
        status.update(fields)
        status["updated_at"] = self.t
        self.run.status_path.write_text(json.dumps(status), encoding="utf-8")

    def record(self, kind: str, step: int, **fields: Any) -> None:
        line = json.dumps({"t": self.t, "kind": kind, "step": step, **fields})
        with open(self.run.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def start(self, step: int = 0, world_size: int = 1) -> None:
        self.record("start", step, epoch=0, resumed_from=None, device="cpu", world_size=world_size,
                    precision="fp32", torch="2.x", batch_size=8)

    def train(self, steps: range, epoch: int = 0, seconds_per_step: float = 0.5,
              loss: Callable[[int], float] = lambda s: 2.0 / (1 + s / 50) + 0.2,
              attention: Callable[[int], float] = lambda s: min(0.8, 0.1 + s / 400)) -> None:
        for step in steps:
            self.t += seconds_per_step
            self.record("train", step, epoch=epoch, loss=loss(step), loss_mel=loss(step) * 0.8,
                        loss_gate=0.05, loss_guided=0.01, attention_score=attention(step), grad_norm=1.0,
                        lr=1e-3, batch_size=8, frames_per_s=1000.0)
        last = steps[-1] if len(steps) else 0
        self.status(step=last, epoch=epoch)

    def val(self, step: int, loss: float, attention: float = 0.4, epoch: int = 0) -> None:
        self.record("val", step, epoch=epoch, loss=loss, loss_mel=loss * 0.8, loss_gate=0.05,
                    attention_score=attention)

    def checkpoint(self, step: int, val_loss: float | None = None, tags: tuple[str, ...] = (),
                   size: int = 2048) -> Path:
        """A checkpoint file of arbitrary bytes, its record, and the alignment/mel pictures."""
        path = self.run.checkpoint_path(step)
        path.write_bytes(b"x" * size)
        mtime = self.t
        import os

        os.utime(path, (mtime, mtime))
        self.record("checkpoint", step, path=str(path.relative_to(self.run.path)), val_loss=val_loss,
                    tags=list(tags))
        decoder, text_len = 60, 20
        alignment = np.zeros((decoder, text_len), dtype=np.float32)
        for frame in range(decoder):
            alignment[frame, min(text_len - 1, frame * text_len // decoder)] = 1.0
        np.save(self.run.alignment_path(step), alignment)
        mel = np.tile(np.linspace(-4, 2, 80)[:, None], (1, decoder)).astype(np.float32)
        np.save(self.run.mel_path(step), mel)
        self.record("alignment", step, path=str(self.run.alignment_path(step).relative_to(self.run.path)),
                    mel=str(self.run.mel_path(step).relative_to(self.run.path)), wav=None,
                    text="The quick brown fox.", checkpoint=str(path.relative_to(self.run.path)))
        return path

    def event(self, code: str, message: str, level: str = "warn", step: int = 0) -> None:
        self.record("event", step, level=level, code=code, message=message)

    def end(self, reason: str, step: int, state: str, error: str | None = None) -> None:
        self.record("end", step, reason=reason)
        self.status(state=state, error=error)
        self.release()

    def log(self, text: str) -> None:
        with open(self.run.log_path, "a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")

    def release(self) -> None:
        if self.locked:
            self.run.release_lock()
            self.locked = False


def typical_run(runs_root: Path, name: str = "demo_20231114_221320", steps: int = 400) -> FakeRun:
    """A running run with train/val history, two checkpoints, an event and a log."""
    fake = FakeRun(runs_root, name)
    fake.start()
    fake.log("voxtop trainer: tiny preset on cpu, 142 train clips, batch 8")
    for chunk in range(0, steps, 100):
        fake.train(range(chunk + 10, chunk + 101, 10))
        fake.val(chunk + 100, 2.0 / (1 + (chunk + 100) / 60) + 0.3, attention=min(0.7, 0.15 + chunk / 500))
        fake.log(f"step {chunk + 100} loss {2.0 / (1 + (chunk + 100) / 50) + 0.2:.4f}")
    fake.checkpoint(200, val_loss=0.95, tags=("best",))
    fake.checkpoint(400, val_loss=0.80, tags=("best",))
    fake.event("lr_reduced", "learning rate 0.001 -> 0.0005", level="info", step=300)
    return fake


class FakeSampler:
    """A GPU sampler with fixed figures, for deterministic screens."""

    def sample(self) -> Any:
        from tui.gpu import GpuReading, HostReading, Reading

        return Reading([GpuReading(0, "FakeGPU 80GB", 87.0, 40960.0, 81920.0, 65.0, 300.0)],
                       HostReading(12.0, 4096.0, 16384.0))


class FakeLauncher:
    """Records what the app asked for instead of starting processes."""

    def __init__(self) -> None:
        self.started: list[tuple[Path, Path | None]] = []
        self.stopped: list[tuple[Path, bool]] = []
        self.prepared: list[Any] = []

    def prepare(self, runs_root: Path, config: Any, name: str | None) -> RunDir:
        from trainer.launch import prepare_run

        self.prepared.append(config)
        return prepare_run(runs_root, config, name)

    def start(self, run: RunDir, checkpoint: Path | None = None) -> None:
        self.started.append((run.path, checkpoint))

    def stop(self, run: RunDir, kill: bool = False) -> bool:
        self.stopped.append((run.path, kill))
        return True


async def wait_for(pilot: Any, condition: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    """Let the app run until `condition()` is truthy (workers finish, messages land); fail after timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await settle(pilot)


def form_open(app: Any) -> bool:
    """The Parameters form is the current screen and is mounted (its configs are read in a worker first)."""
    return type(app.screen).__name__ == "ParamsScreen" and app.screen.is_mounted and bool(app.screen.children)


async def settle(pilot: Any) -> None:
    """Wait for running workers (a cancelled exclusive one is fine), then let messages land."""
    from textual.worker import WorkerCancelled

    try:
        await pilot.app.workers.wait_for_complete()
    except WorkerCancelled:
        pass
    await pilot.pause(0.02)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time = UTC, so screens that show times are the same on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def sync(test: Callable[..., Any]) -> Callable[..., Any]:
    """Run an async Pilot test with asyncio.run (no pytest async plugin needed)."""
    import functools

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(test(*args, **kwargs))

    return wrapper


def curve_run(runs_root: Path, shape: str, name: str = "curve_20231114_221320", evaluations: int = 30) -> FakeRun:
    """A finished run with one val record per 100 steps and a checkpoint at every other one.

    `shape` "u": val loss falls to a minimum at step 1000 and rises after while the train loss keeps
    falling (overtraining); "plateau": val loss flattens with small noise and never rises.
    """
    import math

    fake = FakeRun(runs_root, name, state="finished", hold_lock=False, total_steps=evaluations * 100)
    fake.start()
    for index in range(1, evaluations + 1):
        step = index * 100
        fake.train(range(step - 90, step + 1, 10), loss=lambda s: 1.5 / (1 + s / 300) + 0.1)
        if shape == "u":
            val = 0.5 + ((step - 1000) / 1000) ** 2
        else:
            val = 0.5 + 1.0 / (1 + step / 100) + 0.002 * math.sin(step)
        fake.val(step, val, attention=0.5)
        if index % 2 == 0:
            fake.checkpoint(step, val_loss=val)
    fake.end("finished", evaluations * 100, "finished")
    return fake
