"""GPU checks on a real CUDA machine: the NVML panel against nvidia-smi, CUDA training end to end,
the TUI's Monitor and GPU view during that run, and the OOM back-off against a real out-of-memory.

    python bench/gpu_check.py --out DIR [--epochs 40] [--batch 32] [--precision auto]

1. `voxtop train` on the demo dataset with the `full` preset (a real run directory, real
   trainer subprocess). Every second, one reading through tui.gpu.Sampler (what the GPU
   panel shows) and one `nvidia-smi --query-gpu` are taken side by side; DIR/samples.csv
   holds them and the summary prints the mean absolute differences and whether the panel
   marked the trainer's process as the run's own.
2. Once the run is past its first steps, the real TUI is started headless on the runs
   folder (a subprocess: `--screenshot`), opens the run's Monitor and then the full-screen
   GPU view, and saves both as SVG in DIR.
3. A second process holds all but `--free-gib` GiB of GPU memory, and a `full` run with
   `--oom-batch` clips per batch is started: the trainer must hit a real CUDA out-of-memory,
   halve the batch until it fits (`oom_backoff` events) and finish.

Exits 2 without a CUDA GPU.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMI_FIELDS = "utilization.gpu,memory.used,temperature.gpu,power.draw,clocks.sm"


def smi() -> list[float | None]:
    out = subprocess.run(["nvidia-smi", f"--query-gpu={SMI_FIELDS}", "--format=csv,noheader,nounits", "-i", "0"],
                         capture_output=True, text=True, check=True).stdout.strip()
    values: list[float | None] = []
    for part in out.split(","):
        try:
            values.append(float(part))
        except ValueError:
            values.append(None)
    return values


def voxtop(runs: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "tui.cli", "--runs", str(runs), *args]


def newest_run(runs: Path):
    from trainer.rundir import RunDir

    found = sorted((p for p in runs.iterdir() if (p / "config.toml").exists()), key=lambda p: p.stat().st_mtime)
    return RunDir(found[-1]) if found else None


def last_step(run) -> int:
    status = run.read_status() if run else None
    return int((status or {}).get("step") or 0)


def events(run, code: str) -> list[dict]:
    from trainer.rundir import read_metrics

    return [r for r in read_metrics(run.metrics_path) if r.get("kind") == "event" and r.get("code") == code]


def follow(proc: subprocess.Popen, runs: Path, rows: list[dict], out: Path | None = None,
           screenshot_at: int | None = None) -> None:
    """Sample panel and nvidia-smi every second until `proc` ends; take the screenshots once."""
    from tui.gpu import Sampler, mark_processes, run_trainer

    sampler = Sampler()
    shot = None
    while proc.poll() is None:
        time.sleep(1.0)
        run = newest_run(runs)
        reading = sampler.sample()
        smi_values = smi()
        if not reading.gpus:
            print(f"panel has no GPU: {reading.reason}")
            continue
        reading = mark_processes(reading, run_trainer(run) if run else None)
        g = reading.gpus[0]
        rows.append({"t": round(time.time(), 2), "step": last_step(run),
                     "panel_util": g.util_pct, "smi_util": smi_values[0],
                     "panel_mem_mb": g.mem_used_mb, "smi_mem_mb": smi_values[1],
                     "panel_temp": g.temp_c, "smi_temp": smi_values[2],
                     "panel_power_w": g.power_w, "smi_power_w": smi_values[3],
                     "panel_sm_mhz": g.sm_clock_mhz, "smi_sm_mhz": smi_values[4],
                     "processes": " ".join(f"{p.pid}{'*' if p.own else ''}:{p.mem_mb:.0f}MB"
                                           for p in reading.processes if p.mem_mb is not None)})
        if out is not None:
            write_csv(rows, out / "samples.csv")
        if len(rows) % 15 == 1:
            print(f"  t+{len(rows)} s step {rows[-1]['step']}: panel util {g.util_pct}% / nvidia-smi "
                  f"{smi_values[0]}%, memory {g.mem_used_mb} / {smi_values[1]} MB", flush=True)
        if out and screenshot_at is not None and shot is None and last_step(run) >= screenshot_at:
            shot = subprocess.Popen([sys.executable, __file__, "--screenshot", str(runs), "--out", str(out)])
    if shot is not None:
        shot.wait()


def replicate(source: Path, target: Path, times: int) -> Path:
    """`source` (LJSpeech layout) with every clip listed `times` times under new ids (wavs linked)."""
    if times <= 1:
        return source
    (target / "wavs").mkdir(parents=True)
    lines = []
    for line in (source / "metadata.csv").read_text(encoding="utf-8").splitlines():
        clip, _, rest = line.partition("|")
        for k in range(times):
            os.symlink(source / "wavs" / f"{clip}.wav", target / "wavs" / f"{clip}_{k}.wav")
            lines.append(f"{clip}_{k}|{rest}")
    (target / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def summarise(rows: list[dict], label: str) -> None:
    busy = [r for r in rows if r["step"] > 0]
    print(f"{label}: {len(rows)} paired samples, {len(busy)} while training")
    for key, unit in (("util", "%"), ("mem_mb", "MB"), ("temp", "C"), ("power_w", "W"), ("sm_mhz", "MHz")):
        pairs = [(r[f"panel_{key}"], r[f"smi_{key}"]) for r in busy
                 if r[f"panel_{key}"] is not None and r[f"smi_{key}"] is not None]
        if not pairs:
            print(f"  {key:7}: no pairs")
            continue
        diff = statistics.mean(abs(a - b) for a, b in pairs)
        print(f"  {key:7}: panel median {statistics.median(a for a, _ in pairs):8.1f}{unit}  "
              f"nvidia-smi median {statistics.median(b for _, b in pairs):8.1f}{unit}  "
              f"mean |difference| {diff:.1f}{unit}")
    own = sum("*" in r["processes"] for r in busy)
    print(f"  trainer process marked as the run's own in {own}/{len(busy)} samples")


def write_csv(rows: list[dict], path: Path) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


async def take_screenshots(runs: Path, out: Path) -> None:
    from tui.app import create_app

    app = create_app(ROOT / "datasets", runs)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause(1.5)
        await pilot.press("o")
        await pilot.pause(4.0)
        app.save_screenshot(filename="monitor.svg", path=str(out))
        await pilot.press("g")
        await pilot.pause(4.0)
        app.save_screenshot(filename="gpu.svg", path=str(out))
    print(f"screenshots saved in {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--oom-batch", type=int, default=256)
    parser.add_argument("--free-gib", type=float, default=6.0)
    parser.add_argument("--replicate", type=int, default=1,
                        help="train on the demo clips copied N times (a dataset big enough that an "
                             "epoch's validation and checkpoint stop dominating)")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: train,oom")
    parser.add_argument("--screenshot", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.screenshot:
        asyncio.run(take_screenshots(args.screenshot, args.out))
        return 0
    import torch

    if not torch.cuda.is_available():
        print("not measured: no CUDA GPU available in this environment")
        return 2
    skip = set(filter(None, args.skip.split(",")))
    config = ROOT / "configs" / "demo.toml"
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"voxtop-gpu-check-{os.getpid()}"

    if "train" not in skip:
        from trainer.rundir import read_metrics

        runs = work / "runs"
        runs.mkdir(parents=True)
        dataset = replicate(ROOT / "datasets" / "demo", work / f"demo-x{args.replicate}", args.replicate)
        cmd = voxtop(runs, "train", str(config), "--name", "gpu", "--set", f"data.dataset={dataset}",
                     "--set", "model.preset=full",
                     "--set", f"train.epochs={args.epochs}", "--set", f"train.batch_size={args.batch}",
                     "--set", f"train.precision={args.precision}", "--set", "checkpoint.every_steps=50",
                     "--set", "train.learning_rate=0.001")
        print("$", " ".join(cmd), flush=True)
        started = time.monotonic()
        log = open(args.out / "train.log", "w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        rows: list[dict] = []
        follow(proc, runs, rows, args.out, screenshot_at=10)
        print(f"voxtop train exited {proc.returncode} after {time.monotonic() - started:.0f} s")
        for line in (args.out / "train.log").read_text().splitlines():
            if "CUDA graph" in line or "Traceback" in line or "Error" in line:
                print("  log:", line)
        write_csv(rows, args.out / "samples.csv")
        summarise(rows, "panel vs nvidia-smi during full-preset training")
        run = newest_run(runs)
        status = run.read_status() or {}
        records = read_metrics(run.metrics_path)
        train = [r for r in records if r.get("kind") == "train"]
        start = next((r for r in records if r.get("kind") == "start"), {})
        fps = [r["frames_per_s"] for r in train[1:] if r.get("frames_per_s")]
        print(f"  run {run.name}: state {run.effective_state(status)}, step {status.get('step')}, "
              f"device {start.get('device')}, precision {start.get('precision')}, "
              f"loss {train[0]['loss'] if train else None} -> {train[-1]['loss'] if train else None}, "
              f"attention {train[-1].get('attention_score') if train else None}, "
              f"frames/s median {statistics.median(fps) if fps else None}, "
              f"peak GPU memory {max((r.get('gpu_mem_mb') or 0) for r in train) if train else None} MB, "
              f"checkpoints {[c.path.name for c in run.checkpoints()]}")

    if "oom" not in skip:
        runs = work / "oom-runs"
        runs.mkdir(parents=True)
        free, total = torch.cuda.mem_get_info()
        hold = int(free - args.free_gib * 2**30)
        hog = subprocess.Popen([sys.executable, "-c",
                                "import sys, time, torch\n"
                                f"x = torch.empty({hold}, dtype=torch.uint8, device='cuda')\n"
                                "print('holding', flush=True)\n"
                                "time.sleep(3600)\n"], stdout=subprocess.PIPE, text=True)
        assert hog.stdout is not None
        print(f"OOM check: another process holds {hold / 2**30:.1f} GiB of {total / 2**30:.1f} GiB "
              f"({hog.stdout.readline().strip()}); {args.free_gib} GiB left for the trainer", flush=True)
        cmd = voxtop(runs, "train", str(config), "--name", "oom", "--set", "model.preset=full",
                     "--set", "train.epochs=2", "--set", f"train.batch_size={args.oom_batch}",
                     "--set", "train.precision=fp32", "--set", "checkpoint.every_steps=1000",
                     "--set", "train.log_every_steps=1")
        print("$", " ".join(cmd), flush=True)
        log = open(args.out / "oom.log", "w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        rows = []
        follow(proc, runs, rows)
        hog.kill()
        run = newest_run(runs)
        status = run.read_status() or {}
        backoffs = events(run, "oom_backoff")
        print(f"  voxtop train exited {proc.returncode}: state {run.effective_state(status)}, "
              f"step {status.get('step')}/{status.get('total_steps')}, error {status.get('error')}")
        for event in backoffs:
            print(f"  event oom_backoff: {event.get('message')}")
        print(f"  OOM back-off {'WORKED' if backoffs and run.effective_state(status) == 'finished' else 'FAILED'}")
        summarise(rows, "panel during the OOM run (two processes on the GPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
