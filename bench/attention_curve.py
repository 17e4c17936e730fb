"""Train the tiny preset on the demo dataset and print how the attention score and losses move.

    .venv/bin/python bench/attention_curve.py [--steps 400] [--runs /tmp/voxtop-bench]

A model that learns to align shows the attention score rising over the first few hundred
steps (and the alignment pictures turning diagonal); the figures go in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer.rundir import read_metrics  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--runs", type=Path, default=Path(tempfile.mkdtemp(prefix="voxtop-bench-")))
    parser.add_argument("--every", type=int, default=20, help="print one row per this many steps")
    args = parser.parse_args()
    started = time.perf_counter()
    command = [sys.executable, "-m", "tui.cli", "--runs", str(args.runs), "train",
               str(ROOT / "configs" / "demo.toml"), "--name", "curve",
               "--set", f"train.max_steps={args.steps}", "--set", f"checkpoint.every_steps={args.steps // 4}"]
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    if result.returncode:
        print("training failed; see the run's train.log", file=sys.stderr)
        return 1
    run = max(args.runs.iterdir())
    metrics = read_metrics(run / "metrics.jsonl")
    train = [r for r in metrics if r["kind"] == "train"]
    val = {r["step"]: r for r in metrics if r["kind"] == "val"}
    print(f"run {run}  ({time.perf_counter() - started:.0f} s wall, {len(train)} train records)")
    print(f"{'step':>6} {'loss':>9} {'mel':>9} {'gate':>7} {'attention':>10} {'val loss':>9} {'val attn':>9}")
    for record in train:
        if record["step"] % args.every and record is not train[-1]:
            continue
        nearest_val = max((s for s in val if s <= record["step"]), default=None)
        v = val.get(nearest_val, {})
        print(f"{record['step']:>6} {record['loss']:>9.4f} {record['loss_mel']:>9.4f} {record['loss_gate']:>7.4f} "
              f"{record['attention_score']:>10.3f} {v.get('loss', float('nan')):>9.4f} "
              f"{v.get('attention_score', float('nan')):>9.3f}")
    first, last = train[0]["attention_score"], train[-1]["attention_score"]
    print(f"attention score {first:.3f} -> {last:.3f} over {train[-1]['step']} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
