"""The run contract's queries on a long run: `voxtop runs` and `voxtop checkpoints`, time and memory.

    .venv/bin/python bench/run_queries.py [--records 2000000] [--checkpoints 5000] [--repeat 5] [--data DIR]

1. Generates (once, cached in --data) a run directory in the real format: metrics.jsonl with
   about --records records (train every step, and at each of --checkpoints checkpoints a val,
   checkpoint, alignment and read-through health record), a resume halfway that supersedes a
   few steps, metrics.index as MetricsWriter writes it, status.json, config.toml, and one small
   file per checkpoint in checkpoints/.
2. Runs `voxtop runs` and `voxtop checkpoints RUN` as fresh processes --repeat times each and
   reports the median wall time and the peak RSS of each (from wait4's rusage).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VOXTOP = str(ROOT / ".venv" / "bin" / "voxtop")
RUN_NAME = "queries_20240101_000000"


def _record(t: float, kind: str, step: int, **fields: object) -> str:
    """One line exactly as MetricsWriter.write formats it."""
    return json.dumps({"t": round(t, 3), "kind": kind, "step": int(step), **fields}, allow_nan=True) + "\n"


def _health(step: int, rng: random.Random) -> dict[str, object]:
    reads = min(12, step // 40_000 + rng.randrange(0, 2))
    items = [{"text": f"held-out sentence {k}.", "reached_end": k < reads, "stopped": True, "stop": "gate",
              "length_ratio": 1.0, "monotonicity": 0.98, "heard": None, "understood": None, "wer": None,
              "wav": f"health/step-{step:08d}/{k:02d}.wav"} for k in range(12)]
    return {"sentences": 12, "reached_end": reads, "stopped": 12, "monotonic": 12, "read_through": reads,
            "understood": None, "wer": None, "monotonicity": 0.98, "length_ratio": 1.0, "diagonality": 0.9,
            "recogniser": None, "checkpoint": f"checkpoints/step-{step:08d}.pt", "elapsed_s": 3.2, "items": items}


def generate(data: Path, records: int, checkpoints: int) -> Path:
    """The run directory under `data`, made once per size."""
    from trainer.rundir import INDEX_HEADER, RunDir, atomic_write_json, atomic_write_text, index_path, index_rows

    run_path = data / "runs" / RUN_NAME
    done = data / f"done-{records}-{checkpoints}"
    if done.exists():
        return run_path
    run = RunDir(run_path)
    run.path.mkdir(parents=True, exist_ok=True)
    run.make_folders()
    atomic_write_text(run.config_path, (ROOT / "configs" / "demo.toml").read_text())
    steps = records - 4 * checkpoints
    every = steps // checkpoints
    resume_at = (checkpoints // 2) * every  # a resume from the middle checkpoint, after 100 more steps
    rng = random.Random(0)
    t0 = time.time() - steps * 0.5
    offset = 0
    with open(run.metrics_path, "wb") as lines, open(index_path(run.metrics_path), "wb") as index:
        index.write(INDEX_HEADER)

        def put(line: str) -> None:
            nonlocal offset
            raw = line.encode("utf-8")
            lines.write(raw)
            index.writelines(index_rows(raw, offset))
            offset += len(raw)

        put(_record(t0, "start", 0, epoch=1, resumed_from=None, device="cuda:0", world_size=1, precision="bf16",
                    torch="2.4.0", batch_size=32))
        step, resumed = 0, False
        while step < steps:
            step += 1
            t = t0 + step * 0.5
            loss = (0.3 + 2.0 / math.sqrt(step)) * (1 + 0.1 * rng.random())
            score = min(0.95, 0.1 + 0.8 * (1 - math.exp(-step / 20000)))
            put(_record(t, "train", step, epoch=step // 400 + 1, loss=loss, loss_mel=loss * 0.8,
                        loss_gate=loss * 0.1, loss_guided=0.01, attention_score=score, grad_norm=1.0,
                        lr=1e-3, batch_size=32, frames_per_s=12000.0, gpu_mem_mb=14000.0))
            if step % every == 0:
                val = loss * 1.1 + 0.2 * max(0.0, step / steps - 0.6)  # overtrains in the last part
                put(_record(t, "val", step, epoch=step // 400 + 1, loss=val, loss_mel=val * 0.8,
                            loss_gate=val * 0.1, attention_score=score * 0.98))
                put(_record(t, "checkpoint", step, path=f"checkpoints/step-{step:08d}.pt", val_loss=val,
                            tags=["backup"]))
                put(_record(t, "alignment", step, path=f"alignments/step-{step:08d}.npy",
                            mel=f"mels/step-{step:08d}.npy", wav=f"samples/step-{step:08d}.wav",
                            text="hello there.", checkpoint=f"checkpoints/step-{step:08d}.pt"))
                put(_record(t, "health", step, **_health(step, rng)))
                (run.checkpoints_dir / f"step-{step:08d}.pt").write_bytes(b"checkpoint")
            if step == resume_at + 100 and not resumed:  # killed here: the resume repeats these 100 steps
                put(_record(t, "start", resume_at, epoch=1, resumed_from=resume_at, device="cuda:0",
                            world_size=1, precision="bf16", torch="2.4.0", batch_size=32))
                step, resumed = resume_at, True
    atomic_write_json(run.status_path, {"pid": 0, "pgid": 0, "host": "elsewhere", "state": "finished",
                                        "step": steps, "epoch": steps // 400 + 1, "total_steps": steps,
                                        "started_at": t0, "updated_at": time.time(), "error": None})
    (run.path / "train.log").write_text("run finished\n")
    size = run.metrics_path.stat().st_size
    print(f"wrote {run.metrics_path} ({size / 2**20:.0f} MB), its index and {checkpoints} checkpoints", flush=True)
    done.touch()
    return run_path


def timed(args: list[str]) -> tuple[float, str]:
    """(wall seconds, stdout) of one fresh `voxtop` process."""
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {result.stderr}")
    return elapsed, result.stdout


def measure(args: list[str], repeat: int) -> tuple[float, float, str]:
    """Median wall time over `repeat` fresh processes, and the peak RSS of one measured alone."""
    times, out = [], ""
    for _ in range(repeat):
        elapsed, out = timed(args)
        times.append(elapsed)
    code = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL); "
            "print(os.wait4(p.pid, 0)[2].ru_maxrss)")
    peak_kb = int(subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                                 check=True).stdout)
    return statistics.median(times), peak_kb / 1024, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--checkpoints", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "voxtop-bench-queries")
    args = parser.parse_args()
    run_path = generate(args.data, args.records, args.checkpoints)
    runs = str(run_path.parent)
    for name, command in (("voxtop runs", [VOXTOP, "--runs", runs, "runs"]),
                          ("voxtop checkpoints", [VOXTOP, "--runs", runs, "checkpoints", RUN_NAME])):
        median_s, peak_mb, out = measure(command, args.repeat)
        lines = out.splitlines()
        print(f"{name}: {median_s:.3f} s median of {args.repeat}, peak RSS {peak_mb:.0f} MB "
              f"({len(lines)} lines; {lines[-1] if lines else ''})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
