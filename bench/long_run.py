"""Attach to a long run: open the Monitor on 1,000,000 train + 10,000 val records, against TensorBoard.

    .venv/bin/python bench/long_run.py [--train 1000000] [--val-every 100] [--repeat 5] [--data DIR]

1. Generates (once, cached in --data) a run directory in the real format: metrics.jsonl
   written record by record as trainer.rundir.MetricsWriter writes it (all the train and
   val fields DESIGN.md lists, full-precision floats), status.json, config.toml, a few
   checkpoint and event records; and the same chart points (train and val loss and
   attention score) as TensorBoard event files via torch.utils.tensorboard.SummaryWriter.
2. voxtop: a fresh process per repeat drives the real app headless (`App.run_test`,
   100x30) to the Runs screen, then times opening the Monitor up to the loss chart drawn
   with every point (the train line reaching the last step, val line present). Its peak
   RSS (VmHWM) is read when done.
3. TensorBoard: a fresh process per repeat times
   `EventAccumulator(path, size_guidance={'scalars': 0}).Reload()` plus reading every
   scalar series, and reports its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = str(ROOT / ".venv" / "bin" / "python")
RUN_NAME = "long_20240101_000000"
TAGS = ("train/loss", "train/attention_score", "val/loss", "val/attention_score")


def _record(t: float, kind: str, step: int, **fields: object) -> str:
    """One line exactly as MetricsWriter.write formats it."""
    record = {"t": round(t, 3), "kind": kind, "step": int(step), **fields}
    return json.dumps(record, allow_nan=True) + "\n"


def index_as_written(metrics: Path) -> None:
    """metrics.index for `metrics`, row by row as MetricsWriter writes it beside each line."""
    from trainer.rundir import INDEX_HEADER, index_path, index_rows

    offset = 0
    with open(metrics, "rb") as lines, open(index_path(metrics), "wb") as index:
        index.write(INDEX_HEADER)
        for line in lines:  # a line at a time: the file is 350 MB
            index.writelines(index_rows(line, offset))
            offset += len(line)


def generate(data: Path, train: int, val_every: int) -> Path:
    """The run directory (and tb/ event files) under `data`, made once per size."""
    run_path = data / "runs" / RUN_NAME
    done = data / f"done-{train}-{val_every}"
    if done.exists():
        if not (run_path / "metrics.index").exists():  # made before voxtop kept an index
            index_as_written(run_path / "metrics.jsonl")
        return run_path
    from trainer.rundir import RunDir, atomic_write_json, atomic_write_text

    run = RunDir(run_path)
    run.path.mkdir(parents=True, exist_ok=True)
    run.make_folders()
    atomic_write_text(run.config_path, (ROOT / "configs" / "demo.toml").read_text())
    rng = random.Random(0)
    t0 = time.time() - train * 0.5
    points: list[tuple[str, int, float]] = []
    with open(run.metrics_path, "w", encoding="utf-8") as handle:
        handle.write(_record(t0, "start", 0, epoch=1, resumed_from=None, device="cuda:0", world_size=1,
                             precision="bf16", torch="2.4.0", batch_size=32))
        for step in range(1, train + 1):
            t = t0 + step * 0.5
            decay = 0.3 + 2.0 / math.sqrt(step)
            loss = decay * (1 + 0.1 * rng.random())
            score = min(0.95, 0.1 + 0.8 * (1 - math.exp(-step / 20000))) * (0.95 + 0.05 * rng.random())
            epoch = step // 400 + 1
            handle.write(_record(t, "train", step, epoch=epoch, loss=loss, loss_mel=loss * 0.8,
                                 loss_gate=loss * 0.1, loss_guided=loss * 0.1 * rng.random(),
                                 attention_score=score, grad_norm=rng.random() * 3,
                                 lr=1e-3 * 0.5 ** (step // 200000), batch_size=32,
                                 frames_per_s=round(12000 + 500 * rng.random(), 1),
                                 gpu_mem_mb=round(14000 + rng.random(), 1)))
            points += [("train/loss", step, loss), ("train/attention_score", step, score)]
            if step % val_every == 0:
                val_loss, val_score = loss * 1.1, score * 0.98
                handle.write(_record(t, "val", step, epoch=epoch, loss=val_loss, loss_mel=val_loss * 0.8,
                                     loss_gate=val_loss * 0.1, attention_score=val_score))
                points += [("val/loss", step, val_loss), ("val/attention_score", step, val_score)]
            if step % 100000 == 0:
                handle.write(_record(t, "checkpoint", step, path=f"checkpoints/step-{step:08d}.pt",
                                     val_loss=loss * 1.1, tags=["backup"]))
                handle.write(_record(t, "event", step, level="info", code="lr_reduced",
                                     message=f"learning rate halved at step {step}, as planned"))
    atomic_write_json(run.status_path, {"pid": 0, "pgid": 0, "host": "elsewhere", "state": "finished",
                                        "step": train, "epoch": train // 400 + 1, "total_steps": train,
                                        "started_at": t0, "updated_at": time.time(), "error": None})
    (run.path / "train.log").write_text("run finished\n")
    index_as_written(run.metrics_path)
    print(f"wrote {run.metrics_path} ({run.metrics_path.stat().st_size / 2**20:.0f} MB) and its index", flush=True)
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(data / "tb"), max_queue=10000, flush_secs=600)
    for tag, step, value in points:
        writer.add_scalar(tag, value, step, walltime=t0 + step * 0.5)
    writer.close()
    size = sum(p.stat().st_size for p in (data / "tb").iterdir())
    print(f"wrote {len(points)} scalars to {data / 'tb'} ({size / 2**20:.0f} MB)", flush=True)
    done.touch()
    return run_path


VOXTOP_CHILD = r'''
import asyncio, json, sys, time
from pathlib import Path
from tui.app import create_app
from tui.screens.monitor import MonitorScreen
from trainer.rundir import RunDir

runs, expected_last = Path(sys.argv[1]), float(sys.argv[2])
if sys.argv[4] == "parse":  # a run without metrics.index (older, or written by another tool)
    from trainer.rundir import MetricsReader
    MetricsReader._read_index = lambda self, np, size, out: None

class NoGpu:
    def sample(self):
        from tui.gpu import HostReading, Reading
        return Reading([], HostReading(0.0, 0.0, 1.0))

async def main():
    app = create_app(runs, runs, refresh_s=1.0, gpu_sampler=NoGpu)
    async with app.run_test(size=(100, 30)) as pilot:
        while type(app.screen).__name__ != "RunsScreen":
            await asyncio.sleep(0.01)
        run = RunDir(runs / sys.argv[3])
        started, cpu_started = time.perf_counter(), time.process_time()
        app.open_monitor(run)
        while True:
            await asyncio.sleep(0.005)
            screen = app.screen
            if not isinstance(screen, MonitorScreen):
                continue
            chart = screen.query_one("#loss")
            lines = {line.label: line for line in chart.lines}
            if "train" in lines and "val" in lines and float(lines["train"].steps[-1]) >= expected_last:
                break
        elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
        train_points = screen.model.follower.history.train_loss.count
        val_points = screen.model.follower.history.val_loss.count
    hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(json.dumps({"seconds": elapsed, "cpu_s": cpu_s, "peak_rss_mb": hwm_kb / 1024, "train_points": train_points,
                      "val_points": val_points, "malformed": screen.model.follower.malformed}))

asyncio.run(main())
'''

TB_CHILD = r'''
import json, sys, time
started = time.perf_counter()
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
imported, cpu_started = time.perf_counter(), time.process_time()
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
counts = {tag: len([(e.step, e.value) for e in acc.Scalars(tag)]) for tag in acc.Tags()["scalars"]}
elapsed, cpu_s = time.perf_counter() - imported, time.process_time() - cpu_started
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"seconds": elapsed, "cpu_s": cpu_s, "import_s": imported - started, "peak_rss_mb": hwm_kb / 1024,
                  "counts": counts}))
'''


def run_child(code: str, *args: str, timeout_s: float = 1800) -> dict:
    result = subprocess.run([PYTHON, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                            timeout=timeout_s)
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def _all(results: list[dict]) -> str:
    return ", ".join(f"{r['seconds']:.3f}" for r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1_000_000, help="train records")
    parser.add_argument("--val-every", type=int, default=100, help="one val record per this many steps")
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per side (median reported)")
    parser.add_argument("--tb-repeat", type=int, default=3, help="repeats for TensorBoard (slow)")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "voxtop-bench-long",
                        help="where the generated run and event files are kept between invocations")
    parser.add_argument("--skip-tensorboard", action="store_true")
    args = parser.parse_args()
    run_path = generate(args.data, args.train, args.val_every)
    for mode in ("parse", "index"):
        runs = [run_child(VOXTOP_CHILD, str(run_path.parent), str(args.train), RUN_NAME, mode)
                for _ in range(args.repeat)]
        secs = statistics.median(r["seconds"] for r in runs)
        rss = statistics.median(r["peak_rss_mb"] for r in runs)
        label = "with metrics.index (a run voxtop wrote)" if mode == "index" else "parsing metrics.jsonl (no index)"
        print(f"voxtop {label}: open Monitor -> complete loss chart  median {secs:.3f} s "
              f"(all: {_all(runs)})  peak RSS {rss:.0f} MB  "
              f"points train {runs[0]['train_points']} val {runs[0]['val_points']} "
              f"malformed {runs[0]['malformed']}")
        print(f"   CPU time median {statistics.median(r['cpu_s'] for r in runs):.3f} s")
        print(f"   target < 1.5 s: {'MET' if secs < 1.5 else 'MISSED'}; "
              f"RSS < 250 MB: {'MET' if rss < 250 else 'MISSED'}")
    ours, seconds = runs, secs
    if args.skip_tensorboard:
        return 0
    peers = [run_child(TB_CHILD, str(args.data / "tb")) for _ in range(args.tb_repeat)]
    tb_seconds = statistics.median(r["seconds"] for r in peers)
    tb_rss = statistics.median(r["peak_rss_mb"] for r in peers)
    print(f"tensorboard EventAccumulator Reload + Scalars  median {tb_seconds:.3f} s "
          f"(all: {_all(peers)})  peak RSS {tb_rss:.0f} MB  "
          f"(import {statistics.median(r['import_s'] for r in peers):.2f} s not counted)  "
          f"counts {peers[0]['counts']}")
    tb_cpu = statistics.median(r["cpu_s"] for r in peers)
    print(f"   CPU time median {tb_cpu:.3f} s; CPU-time speed-up "
          f"{tb_cpu / statistics.median(r['cpu_s'] for r in ours):.1f}x")
    print(f"   speed-up {tb_seconds / seconds:.1f}x (target >= 20x): "
          f"{'MET' if tb_seconds / seconds >= 20 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
