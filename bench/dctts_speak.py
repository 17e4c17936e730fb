"""Does the DC-TTS pair speak after N minutes? Train Text2Mel and SSRN side by side, then read their health.

    OMP_NUM_THREADS=1 .venv/bin/python bench/dctts_speak.py --minutes 30 --out bench/results/dctts_30min.json

Starts `voxtop train configs/demo_dctts.toml` (both networks, one trainer each, in the foreground of a
child process), stops it (SIGTERM: both save and stop) when the wall time is up, lets the read-through
health worker judge every Text2Mel checkpoint it kept (running the worker here for any it had no time
for; each renders through the newest SSRN checkpoint of the pair at the time it is judged), and prints
per checkpoint: minutes, step, the held-out sentences' figures (reads through / reached the end /
stopped before 2x / >= 95% monotonic / understood), the median length ratio, teacher-forced attention
score and diagonality, and which SSRN rendered it. Also: seconds per step of each network and the load
average, sampled every 30 s while training (the machine is shared: say so beside the figures).
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


def seconds_per_step(records: list[dict]) -> float | None:
    """Wall seconds per optimiser step over the train records (first to last)."""
    train = [r for r in records if r.get("kind") == "train"]
    if len(train) < 2 or train[-1]["step"] == train[0]["step"]:
        return None
    return (train[-1]["t"] - train[0]["t"]) / (train[-1]["step"] - train[0]["step"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "demo_dctts.toml"))
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--runs", default=str(ROOT / "runs"))
    parser.add_argument("--name", default="dctts-speak")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    loads = [(0.0, os.getloadavg()[0])]
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
        stop_sent, next_load = False, 30.0
        while trainer.poll() is None:
            time.sleep(1.0)
            elapsed = time.time() - started
            if elapsed >= next_load:
                loads.append((round(elapsed / 60, 1), os.getloadavg()[0]))
                next_load += 30.0
            if not stop_sent and elapsed >= args.minutes * 60:
                os.kill(trainer.pid, signal.SIGTERM)
                stop_sent = True
    loads.append((round((time.time() - started) / 60, 1), os.getloadavg()[0]))
    buffer = output.read_text(errors="replace")
    paths = [Path(line.split("run directory: ", 1)[1].strip()) for line in buffer.splitlines()
             if line.startswith("run directory: ")]
    runs = {path.name.split("_")[0].rsplit("-", 1)[-1]: RunDir(path) for path in paths}
    if set(runs) != {"text2mel", "ssrn"}:
        print(buffer[-3000:])
        return 1
    text2mel, ssrn = runs["text2mel"], runs["ssrn"]
    frames_per_char = _frames_per_char(text2mel.log_path.read_text(errors="replace"))
    # Checkpoints the worker had no time for are judged here, after training: same code, same figures.
    subprocess.run([sys.executable, "-m", "trainer.health", str(text2mel.path), "--frames-per-char",
                    str(frames_per_char)], cwd=ROOT, env=env, check=False)
    records = read_metrics(text2mel.metrics_path)
    ssrn_records = read_metrics(ssrn.metrics_path)
    health = {}
    for path in sorted(text2mel.health_dir.glob("step-*.json")):
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
                     "val_attention_score": v.get("attention_score"), "val_diagonality": v.get("attention_diagonality"),
                     "val_loss": v.get("loss"), "vocoder": h.get("vocoder"),
                     "heard": [item.get("heard") for item in h["items"]]})
    t2m_s, ssrn_s = seconds_per_step(records), seconds_per_step(ssrn_records)
    ssrn_steps = max((r["step"] for r in ssrn_records if r.get("kind") == "train"), default=0)
    print(f"runs {text2mel.path.name} + {ssrn.path.name}  config {args.config}  overrides {args.overrides or '-'}")
    print("load average (1 min) while training: " + ", ".join(f"{m} min {load:.2f}" for m, load in loads[::4]))
    print(f"seconds per step: Text2Mel {_fmt(t2m_s)}, SSRN {_fmt(ssrn_s)} (SSRN reached step {ssrn_steps}); "
          f"speaking rate {frames_per_char:.2f} frames/char")
    print(f"{'min':>5} {'step':>5}  {'reads':>5} {'end':>4} {'stop':>4} {'mono':>4} {'undst':>5}  "
          f"{'len x':>5} {'diag':>5}  {'val attn':>8} {'val diag':>8}  vocoder")
    for row in rows:
        understood = "-" if row["understood"] is None else row["understood"]
        print(f"{row['minutes']:>5} {row['step']:>5}  {row['read_through']:>5} {row['reached_end']:>4} "
              f"{row['stopped']:>4} {row['monotonic']:>4} {understood:>5}  {row['length_ratio']:>5} "
              f"{row['free_diagonality']:>5.2f}  {_fmt(row['val_attention_score']):>8} "
              f"{_fmt(row['val_diagonality']):>8}  {row['vocoder']}")
    if rows:
        last = health[rows[-1]["step"]]
        print("newest checkpoint, what the recogniser heard:")
        for item in last["items"]:
            mark = "understood" if item.get("understood") else "not understood"
            print(f"  [{item['stop']:>9}, x{item['length_ratio']:.2f}, {mark}] {item['text']!r} -> {item.get('heard')!r}")
    if args.out:
        Path(args.out).write_text(json.dumps({
            "config": args.config, "overrides": args.overrides, "minutes": args.minutes, "loads": loads,
            "frames_per_char": frames_per_char, "text2mel_s_per_step": t2m_s, "ssrn_s_per_step": ssrn_s,
            "ssrn_steps": ssrn_steps, "runs": [text2mel.path.name, ssrn.path.name], "rows": rows}, indent=1))
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
