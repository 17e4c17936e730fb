"""Does the demo speak after N minutes? Train a config for a fixed wall time, then read its health.

    OMP_NUM_THREADS=1 .venv/bin/python bench/speak.py --minutes 15                       # configs/demo.toml
    OMP_NUM_THREADS=1 .venv/bin/python bench/speak.py --minutes 6 --set train.guided_attention_weight=5

Starts `voxtop train` in the foreground of a child process, stops it (SIGTERM: save and stop) when
the wall time is up, lets the read-through health worker judge every checkpoint it kept (running
the worker here for any it had no time for), and prints per checkpoint: minutes, step, what the
held-out sentences did (reads to the end / reached the end / stopped before 2x / >= 95% monotonic /
understood by the recogniser, out of the sentence count), the median length ratio, teacher-forced
attention score and diagonality. The machine's load average is printed beside it: benchmark quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer.rundir import RunDir, read_metrics  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "demo.toml"))
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--runs", default=str(ROOT / "runs"))
    parser.add_argument("--name", default="speak")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    load_before = os.getloadavg()
    command = [sys.executable, "-m", "tui.cli", "--runs", args.runs, "train", args.config, "--name", args.name,
               "--set", "checkpoint.max_to_keep=0"]  # keep every checkpoint: the curve is the point
    for override in args.overrides:
        command += ["--set", override]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    started = time.time()
    Path(args.runs).mkdir(parents=True, exist_ok=True)
    output = Path(args.runs) / f".{args.name}-{os.getpid()}.out"
    with open(output, "wb") as sink:
        trainer = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        stop_sent = False
        while trainer.poll() is None:
            time.sleep(1.0)
            if not stop_sent and time.time() - started >= args.minutes * 60:
                os.kill(trainer.pid, signal.SIGTERM)
                stop_sent = True
    buffer = output.read_text(errors="replace")
    run_path = None
    if "run directory: " in buffer:
        run_path = Path(buffer.split("run directory: ", 1)[1].splitlines()[0].strip())
    if run_path is None:
        print(buffer)
        return 1
    run = RunDir(run_path)
    records = read_metrics(run.metrics_path)
    frames_per_char = _frames_per_char(buffer)
    # Checkpoints the worker had no time for are judged here, after training: same code, same figures.
    subprocess.run([sys.executable, "-m", "trainer.health", str(run.path), "--frames-per-char",
                    str(frames_per_char)], cwd=ROOT, env=env, check=False)
    health = {}
    for path in sorted(run.health_dir.glob("step-*.json")):
        record = json.loads(path.read_text())
        if "sentences" in record:
            health[record["step"]] = record
    start_t = next((r["t"] for r in records if r.get("kind") == "start"), started)
    checkpoint_t = {r["step"]: r["t"] for r in records if r.get("kind") == "checkpoint"}
    val = {r["step"]: r for r in records if r.get("kind") == "val"}
    rows = []
    for step in sorted(health):
        h, v = health[step], val.get(step, {})
        rows.append({"minutes": round((checkpoint_t.get(step, start_t) - start_t) / 60, 1), "step": step,
                     "n": h["sentences"], "read_through": h["read_through"], "reached_end": h["reached_end"],
                     "stopped": h["stopped"], "monotonic": h["monotonic"], "understood": h["understood"],
                     "wer": h["wer"], "length_ratio": h["length_ratio"], "free_diagonality": h["diagonality"],
                     "monotonicity": h["monotonicity"], "val_attention_score": v.get("attention_score"),
                     "val_diagonality": v.get("attention_diagonality"), "val_loss": v.get("loss"),
                     "stops": [item["stop"] for item in h["items"]],
                     "heard": [item.get("heard") for item in h["items"]]})
    print(f"run {run.path}  config {args.config}  overrides {args.overrides or '-'}")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (2 cores); "
          f"speaking rate {frames_per_char:.2f} frames/char")
    print(f"{'min':>5} {'step':>5}  {'reads':>5} {'end':>4} {'stop':>4} {'mono':>4} {'undst':>5}  "
          f"{'len x':>5} {'diag':>5}  {'val attn':>8} {'val diag':>8}")
    for row in rows:
        understood = "-" if row["understood"] is None else row["understood"]
        print(f"{row['minutes']:>5} {row['step']:>5}  {row['read_through']:>5} {row['reached_end']:>4} "
              f"{row['stopped']:>4} {row['monotonic']:>4} {understood:>5}  {row['length_ratio']:>5} "
              f"{row['free_diagonality']:>5.2f}  {_fmt(row['val_attention_score']):>8} "
              f"{_fmt(row['val_diagonality']):>8}")
    if rows:
        last = health[rows[-1]["step"]]
        print("newest checkpoint, what the recogniser heard:")
        for item in last["items"]:
            mark = "understood" if item.get("understood") else "not understood"
            print(f"  [{item['stop']:>9}, x{item['length_ratio']:.2f}, {mark}] {item['text']!r} -> {item.get('heard')!r}")
    if args.out:
        Path(args.out).write_text(json.dumps({"config": args.config, "overrides": args.overrides,
                                              "minutes": args.minutes, "load_before": load_before,
                                              "frames_per_char": frames_per_char, "rows": rows}, indent=1))
    return 0


def _frames_per_char(log: str) -> float:
    for line in log.splitlines():
        if line.startswith("speaking rate: "):
            return float(line.split()[2])
    raise SystemExit("the trainer did not print its speaking rate")


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


if __name__ == "__main__":
    sys.exit(main())
