"""Following a live run: CPU used by the TUI while a writer appends 50 records/s and a checkpoint every 10 s.

    .venv/bin/python bench/follow_cpu.py [--seconds 60] [--rate 50] [--refresh 1.0]

The TUI runs as `voxtop --runs DIR` in a detached tmux pane (100x30), opened on the run's
Monitor with Enter; a writer in this process appends train records (a val record every
100 steps) through trainer.rundir.MetricsWriter, beats status.json every 5 s, and writes
a checkpoint file (temp name, then rename) plus its checkpoint/alignment records every 10 s.
The TUI process's CPU time (psutil, user + system) over the window is the figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VOXTOP = ROOT / ".venv" / "bin" / "voxtop"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--rate", type=float, default=50.0, help="records appended per second")
    parser.add_argument("--checkpoint-every", type=float, default=10.0, help="seconds between checkpoints")
    parser.add_argument("--history", type=int, default=10_000, help="train records before the window")
    args = parser.parse_args()
    from trainer.rundir import MetricsWriter, RunDir, create_run

    scratch = Path(tempfile.mkdtemp(prefix="voxtop-follow-"))
    run = create_run(scratch / "runs", "live", (ROOT / "configs" / "demo.toml").read_text())
    lock = RunDir(run.path)
    lock.acquire_lock()  # the TUI sees a live trainer on this host
    writer = MetricsWriter(run.metrics_path)
    step = 0

    def status() -> None:
        run.write_status(pid=os.getpid(), pgid=os.getpgid(0), host=socket.gethostname(), state="running",
                         step=step, epoch=1, total_steps=10**7, started_at=time.time() - 100)

    def train_record() -> None:
        nonlocal step
        step += 1
        writer.write("train", step, epoch=1, loss=1.0 / (1 + step / 1000), loss_mel=0.5, loss_gate=0.1,
                     loss_guided=0.01, attention_score=0.4, grad_norm=1.2, lr=1e-3, batch_size=32,
                     frames_per_s=12000.0, gpu_mem_mb=14000.0)
        if step % 100 == 0:
            writer.write("val", step, epoch=1, loss=0.9 / (1 + step / 1000), loss_mel=0.5, loss_gate=0.1,
                         attention_score=0.45)

    def checkpoint() -> None:
        target = run.checkpoint_path(step)
        temp = target.with_name(f".{target.name}.tmp")
        temp.write_bytes(os.urandom(1 << 20))
        os.replace(temp, target)
        np.save(run.alignment_path(step), np.random.rand(120, 40).astype(np.float32))
        np.save(run.mel_path(step), np.random.rand(80, 120).astype(np.float32))
        writer.write("checkpoint", step, path=f"checkpoints/{target.name}", val_loss=0.5, tags=[])
        writer.write("alignment", step, path=f"alignments/step-{step:08d}.npy",
                     mel=f"mels/step-{step:08d}.npy", wav="", text="hello", checkpoint=target.name)

    writer.write("start", 0, epoch=1, resumed_from=None, device="cuda:0", world_size=1, precision="bf16",
                 torch="2.4", batch_size=32)
    for _ in range(args.history):
        train_record()
    checkpoint()
    status()
    session = f"voxtop-follow-{int(time.time())}"
    tmux("new-session", "-d", "-x", "100", "-y", "30", "-s", session,
         f"cd {scratch} && exec {VOXTOP} --runs {scratch / 'runs'} --datasets {scratch}")
    try:
        deadline = time.time() + 30
        while run.name not in tmux("capture-pane", "-p", "-t", session):
            if time.time() > deadline:
                raise TimeoutError("the Runs screen did not list the run")
            time.sleep(0.1)
        tmux("send-keys", "-t", session, "Enter")
        while "attention score" not in tmux("capture-pane", "-p", "-t", session):
            if time.time() > deadline:
                raise TimeoutError("the Monitor did not open")
            time.sleep(0.1)
        time.sleep(3)  # let the first full read settle
        tui = psutil.Process(int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip()))
        before = tui.cpu_times()
        started = time.monotonic()
        next_record, next_checkpoint, next_status = started, started + args.checkpoint_every, started + 5
        written = 0
        while (now := time.monotonic()) < started + args.seconds:
            while next_record <= now:
                train_record()
                written += 1
                next_record += 1.0 / args.rate
            if now >= next_checkpoint:
                checkpoint()
                next_checkpoint += args.checkpoint_every
            if now >= next_status:
                status()
                next_status += 5
            time.sleep(max(0.0, min(next_record, next_checkpoint) - time.monotonic()))
        after = tui.cpu_times()
        elapsed = time.monotonic() - started
        time.sleep(2.5)  # the Monitor redraws every second: give it the last records
        screen = tmux("capture-pane", "-p", "-t", session)
    finally:
        tmux("kill-session", "-t", session)
        writer.close()
        lock.release_lock()
    used = (after.user - before.user) + (after.system - before.system)
    print(f"{written} train records ({args.rate:g}/s) and {int(args.seconds // args.checkpoint_every)} "
          f"checkpoints in {elapsed:.1f} s; last step {step}")
    print(f"TUI CPU {used:.2f} s = {100 * used / elapsed:.2f}% of one core "
          f"(target < 3%: {'MET' if used / elapsed < 0.03 else 'MISSED'})")
    print("step shown on screen:", f"step {step}" in screen or f"{step}/" in screen)
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
