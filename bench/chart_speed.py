"""Chart speed: zoom, pan and cursor keys on a run of 1,000,000 train records; CPU while the compare view
follows three live runs.

    .venv/bin/python bench/chart_speed.py keys [--train 1000000] [--repeat 10] [--size 160x48]
    .venv/bin/python bench/chart_speed.py follow [--seconds 60] [--rate 50] [--runs 3]

keys: a run written as MetricsWriter writes it (bench/long_run.py's record format and
metrics.index, cached in --data) is opened in the real app headless (`App.run_test`); each
key (+, -, <, >, left, right, home, end) is pressed through Pilot and timed until both
Monitor charts have been shown the new view and drawn it (`LineChart.picture()`), so the
figure is key to picture, worker, numpy and drawing included.

follow: like bench/follow_cpu.py (voxtop in a detached tmux pane, 100x30, CPU of the TUI
process from psutil), but with three runs each appended at --rate train records/s (a val
record every 100 steps, a checkpoint every 10 s, heartbeats every 5 s), marked on the Runs
screen and open in the compare view.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from follow_cpu import VOXTOP, tmux  # noqa: E402
from long_run import _record, index_as_written  # noqa: E402

RUN_NAME = "chart_20240101_000000"
KEYS = ("plus", "plus", "comma", "comma", "left", "left", "right", "full_stop", "minus", "home", "end", "minus")


def generate(data: Path, train: int) -> Path:
    """A finished run of `train` records with every train field, a val record per 100 steps, checkpoints."""
    run_path = data / "runs" / RUN_NAME
    done = data / f"done-{train}"
    if done.exists():
        return run_path
    from trainer.rundir import RunDir, atomic_write_json, atomic_write_text

    run = RunDir(run_path)
    run.path.mkdir(parents=True, exist_ok=True)
    run.make_folders()
    atomic_write_text(run.config_path, (ROOT / "configs" / "demo.toml").read_text())
    rng = random.Random(0)
    t0 = time.time() - train * 0.5
    with open(run.metrics_path, "w", encoding="utf-8") as handle:
        handle.write(_record(t0, "start", 0, epoch=1, resumed_from=None, device="cuda:0", world_size=1,
                             precision="bf16", torch="2.4.0", batch_size=32))
        for step in range(1, train + 1):
            t = t0 + step * 0.5
            loss = (0.3 + 2.0 / math.sqrt(step)) * (1 + 0.1 * rng.random()) + (5.0 if step % 250_000 == 0 else 0)
            score = min(0.95, 0.1 + 0.8 * (1 - math.exp(-step / 20000))) * (0.95 + 0.05 * rng.random())
            handle.write(_record(t, "train", step, epoch=step // 400 + 1, loss=loss, loss_mel=loss * 0.8,
                                 loss_gate=loss * 0.1, loss_guided=loss * 0.1 * rng.random(), attention_score=score,
                                 attention_diagonality=score * 0.9, grad_norm=rng.random() * 3,
                                 lr=1e-3 * 0.5 ** (step // 200000), batch_size=32,
                                 frames_per_s=round(12000 + 500 * rng.random(), 1), gpu_mem_mb=14000.0))
            if step % 100 == 0:
                handle.write(_record(t, "val", step, epoch=step // 400 + 1, loss=loss * 1.1, loss_mel=loss * 0.88,
                                     loss_gate=loss * 0.11, attention_score=score * 0.98,
                                     attention_diagonality=score * 0.88))
            if step % 50_000 == 0:
                handle.write(_record(t, "checkpoint", step, path=f"checkpoints/step-{step:08d}.pt",
                                     val_loss=loss * 1.1, tags=[]))
                run.checkpoint_path(step).write_bytes(b"x")
    atomic_write_json(run.status_path, {"pid": 0, "pgid": 0, "host": "elsewhere", "state": "finished",
                                        "step": train, "epoch": train // 400 + 1, "total_steps": train,
                                        "started_at": t0, "updated_at": time.time(), "error": None})
    (run.path / "train.log").write_text("run finished\n")
    index_as_written(run.metrics_path)
    done.touch()
    return run_path


async def time_keys(runs: Path, train: int, repeat: int, size: tuple[int, int],
                    direct: bool = False) -> dict[str, list[float]]:
    from tui.app import create_app
    from tui.screens.monitor import MonitorScreen
    from trainer.rundir import RunDir

    class NoGpu:
        def sample(self):
            from tui.gpu import HostReading, Reading
            return Reading([], HostReading(0.0, 0.0, 1.0))

    app = create_app(runs, runs, refresh_s=1.0, gpu_sampler=NoGpu)
    timings: dict[str, list[float]] = {}
    cpu = timings.setdefault("cpu", [])  # the process's CPU time per key (every thread): the work itself
    async with app.run_test(size=size) as pilot:
        while type(app.screen).__name__ != "RunsScreen":
            await asyncio.sleep(0.01)
        app.open_monitor(RunDir(runs / RUN_NAME))
        started = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            screen = app.screen
            if isinstance(screen, MonitorScreen):
                lines = screen.query_one("#loss").lines
                if lines and float(lines[0].steps[-1]) >= train:
                    break
        print(f"Monitor open with the complete chart in {time.perf_counter() - started:.2f} s", flush=True)
        charts = [screen.query_one("#loss"), screen.query_one("#attention")]
        await pilot.pause(1.5)
        for _ in range(repeat):
            for key in KEYS:
                before = [chart._version for chart in charts]
                began, cpu_began = time.perf_counter(), time.process_time()
                if direct:
                    binding = next(b for b in screen.BINDINGS if key in b.key.split(","))
                    await screen.run_action(binding.action)
                else:
                    await pilot.press(key)
                while any(chart._version == seen for chart, seen in zip(charts, before)):
                    await asyncio.sleep(0.001)
                for chart in charts:
                    chart.picture()
                timings.setdefault(key, []).append(time.perf_counter() - began)
                cpu.append(time.process_time() - cpu_began)
    return timings


def cmd_keys(args: argparse.Namespace) -> int:
    run_path = generate(args.data, args.train)
    size = tuple(int(v) for v in args.size.split("x"))
    print(f"run: {run_path} ({(run_path / 'metrics.jsonl').stat().st_size / 2**20:.0f} MB); load {os.getloadavg()}")
    timings = asyncio.run(time_keys(run_path.parent, args.train, args.repeat, size,  # type: ignore[arg-type]
                                    args.direct))
    worst = 0.0
    cpu = timings.pop("cpu")
    for key, seconds in timings.items():
        ms = sorted(s * 1000 for s in seconds)
        worst = max(worst, ms[-1])
        print(f"{key:10} median {statistics.median(ms):6.1f} ms  p90 {ms[int(0.9 * (len(ms) - 1))]:6.1f} ms  "
              f"max {ms[-1]:6.1f} ms  ({len(ms)} presses)")
    every = sorted(s * 1000 for seconds in timings.values() for s in seconds)
    print(f"all keys: median {statistics.median(every):.1f} ms, p90 {every[int(0.9 * (len(every) - 1))]:.1f} ms, "
          f"max {worst:.1f} ms (target < 100 ms: {'MET' if every[int(0.9 * (len(every) - 1))] < 100 else 'MISSED'}"
          f" at p90)")
    cpu_ms = sorted(s * 1000 for s in cpu)
    print(f"CPU time per key (all threads of the TUI process): median {statistics.median(cpu_ms):.1f} ms, "
          f"max {cpu_ms[-1]:.1f} ms")
    print(json.dumps({key: [round(s * 1000, 1) for s in seconds] for key, seconds in timings.items()}))
    return 0


def cmd_follow(args: argparse.Namespace) -> int:
    import numpy as np
    import psutil

    from trainer.rundir import MetricsWriter, RunDir, create_run

    scratch = Path(tempfile.mkdtemp(prefix="voxtop-compare-"))
    live = []
    for index in range(args.runs):
        run = create_run(scratch / "runs", f"live{index}", (ROOT / "configs" / "demo.toml").read_text())
        lock = RunDir(run.path)
        lock.acquire_lock()
        live.append({"run": run, "lock": lock, "writer": MetricsWriter(run.metrics_path), "step": 0})

    def status(item: dict) -> None:
        item["run"].write_status(pid=os.getpid(), pgid=os.getpgid(0), host=socket.gethostname(), state="running",
                                 step=item["step"], epoch=1, total_steps=10**7, started_at=time.time() - 100)

    def train_record(item: dict) -> None:
        item["step"] += 1
        step, writer = item["step"], item["writer"]
        writer.write("train", step, epoch=1, loss=1.0 / (1 + step / 1000), loss_mel=0.5, loss_gate=0.1,
                     loss_guided=0.01, attention_score=0.4, grad_norm=1.2, lr=1e-3, batch_size=32,
                     frames_per_s=12000.0, gpu_mem_mb=14000.0)
        if step % 100 == 0:
            writer.write("val", step, epoch=1, loss=0.9 / (1 + step / 1000), loss_mel=0.5, loss_gate=0.1,
                         attention_score=0.45)

    def checkpoint(item: dict) -> None:
        run, step, writer = item["run"], item["step"], item["writer"]
        target = run.checkpoint_path(step)
        temp = target.with_name(f".{target.name}.tmp")
        temp.write_bytes(os.urandom(1 << 20))
        os.replace(temp, target)
        np.save(run.alignment_path(step), np.random.rand(120, 40).astype(np.float32))
        writer.write("checkpoint", step, path=f"checkpoints/{target.name}", val_loss=0.5, tags=[])

    for item in live:
        item["writer"].write("start", 0, epoch=1, resumed_from=None, device="cuda:0", world_size=1,
                             precision="bf16", torch="2.4", batch_size=32)
        for _ in range(args.history):
            train_record(item)
        checkpoint(item)
        status(item)
    session = f"voxtop-compare-{int(time.time())}"
    tmux("new-session", "-d", "-x", "100", "-y", "30", "-s", session,
         f"cd {scratch} && exec {VOXTOP} --runs {scratch / 'runs'} --datasets {scratch}")
    try:
        deadline = time.time() + 30
        while "live0" not in tmux("capture-pane", "-p", "-t", session):
            if time.time() > deadline:
                raise TimeoutError("the Runs screen did not list the runs")
            time.sleep(0.1)
        for _ in range(args.runs):
            tmux("send-keys", "-t", session, "Space")
            tmux("send-keys", "-t", session, "Down")
            time.sleep(0.2)
        tmux("send-keys", "-t", session, "c")
        while "verdict" not in tmux("capture-pane", "-p", "-t", session):
            if time.time() > deadline:
                raise TimeoutError("the compare view did not open")
            time.sleep(0.1)
        time.sleep(3)
        tui = psutil.Process(int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip()))
        before = tui.cpu_times()
        started = time.monotonic()
        next_record, next_checkpoint, next_status = started, started + args.checkpoint_every, started + 5
        written = 0
        while (now := time.monotonic()) < started + args.seconds:
            while next_record <= now:
                for item in live:
                    train_record(item)
                written += 1
                next_record += 1.0 / args.rate
            if now >= next_checkpoint:
                for item in live:
                    checkpoint(item)
                next_checkpoint += args.checkpoint_every
            if now >= next_status:
                for item in live:
                    status(item)
                next_status += 5
            time.sleep(max(0.0, min(next_record, next_checkpoint) - time.monotonic()))
        after = tui.cpu_times()
        elapsed = time.monotonic() - started
        time.sleep(2.5)
        screen = tmux("capture-pane", "-p", "-t", session)
    finally:
        tmux("kill-session", "-t", session)
        for item in live:
            item["writer"].close()
            item["lock"].release_lock()
    used = (after.user - before.user) + (after.system - before.system)
    print(f"{args.runs} runs, each {written} train records ({args.rate:g}/s) and a checkpoint every "
          f"{args.checkpoint_every:g} s, in {elapsed:.1f} s; load {os.getloadavg()}")
    print(f"TUI CPU {used:.2f} s = {100 * used / elapsed:.2f}% of one core "
          f"(target < 3%: {'MET' if used / elapsed < 0.03 else 'MISSED'})")
    print("compare view on screen:", "verdict" in screen)
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    keys = sub.add_parser("keys", help="zoom, pan and cursor keys on a long run")
    keys.add_argument("--train", type=int, default=1_000_000)
    keys.add_argument("--repeat", type=int, default=10, help="rounds of the key sequence")
    keys.add_argument("--size", default="160x48", help="terminal size")
    keys.add_argument("--direct", action="store_true",
                      help="run each key's action instead of pressing it through Pilot (no Pilot overhead)")
    keys.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "voxtop-bench-chart")
    keys.set_defaults(func=cmd_keys)
    follow = sub.add_parser("follow", help="CPU of the compare view following live runs")
    follow.add_argument("--seconds", type=float, default=60.0)
    follow.add_argument("--rate", type=float, default=50.0, help="train records per second, per run")
    follow.add_argument("--runs", type=int, default=3)
    follow.add_argument("--checkpoint-every", type=float, default=10.0)
    follow.add_argument("--history", type=int, default=10_000, help="train records per run before the window")
    follow.set_defaults(func=cmd_follow)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
