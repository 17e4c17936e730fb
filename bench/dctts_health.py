"""Judge the checkpoints of a Text2Mel run that have no read-through health yet, then tabulate them all.

    OMP_NUM_THREADS=1 .venv/bin/python bench/dctts_health.py runs/dctts-speak-text2mel_... --listen 455 667

On a shared 2-core machine pocketsphinx needs about a minute a sentence for DC-TTS renderings, so a
30-minute run's ten checkpoints cannot all be listened to in reasonable time: the recogniser listens
to the checkpoints named with `--listen` only; the others get every other figure (reads to the end,
stops, monotonic, length). Each renders through the newest SSRN checkpoint of the pair when judged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer.health import evaluate, pending  # noqa: E402
from trainer.rundir import RunDir, read_metrics  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--listen", type=int, nargs="*", default=[], help="steps the recogniser listens to")
    parser.add_argument("--skip", type=int, nargs="*", default=[], help="steps another process is judging")
    parser.add_argument("--frames-per-char", type=float, default=5.026)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    run = RunDir(args.run)
    for path in reversed(pending(run)):  # oldest first: when does it first read through?
        step = int(path.stem.split("-")[1])
        if step in args.skip:
            continue
        print(f"judging {path.name} ({'with' if step in args.listen else 'without'} the recogniser)", flush=True)
        evaluate(run, path, args.frames_per_char, log=lambda message: None, listen=step in args.listen)
    records = read_metrics(run.metrics_path)
    start_t = next(r["t"] for r in records if r.get("kind") == "start")
    minutes = {r["step"]: round((r["t"] - start_t) / 60, 1) for r in records if r.get("kind") == "checkpoint"}
    val = {r["step"]: r for r in records if r.get("kind") == "val"}
    rows = []
    print(f"{'min':>5} {'step':>5}  {'reads':>5} {'end':>4} {'stop':>4} {'mono':>4} {'undst':>5}  {'len x':>5} "
          f"{'diag':>5}  {'val attn':>8} {'val diag':>8}  vocoder")
    for path in sorted(run.health_dir.glob("step-*.json")):
        h = json.loads(path.read_text())
        if "sentences" not in h:
            continue
        v = val.get(h["step"], {})
        rows.append({**{k: h[k] for k in ("step", "sentences", "read_through", "reached_end", "stopped",
                                            "monotonic", "understood", "wer", "length_ratio", "diagonality")},
                     "minutes": minutes.get(h["step"]), "vocoder": h.get("vocoder"),
                     "val_attention_score": v.get("attention_score"), "val_diagonality": v.get("attention_diagonality"),
                     "heard": [item.get("heard") for item in h["items"]]})
        row = rows[-1]
        understood = "-" if row["understood"] is None else row["understood"]
        print(f"{row['minutes']:>5} {row['step']:>5}  {row['read_through']:>5} {row['reached_end']:>4} "
              f"{row['stopped']:>4} {row['monotonic']:>4} {understood:>5}  {row['length_ratio']:>5} "
              f"{row['diagonality']:>5.2f}  {_fmt(row['val_attention_score']):>8} {_fmt(row['val_diagonality']):>8}"
              f"  {row['vocoder']}")
    if args.out:
        args.out.write_text(json.dumps({"run": str(run.path), "rows": rows}, indent=1))
    return 0


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


if __name__ == "__main__":
    sys.exit(main())
