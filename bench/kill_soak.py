"""Kill soak: SIGKILL a real tiny CPU trainer again and again on one run, resume it each time.

    .venv/bin/python bench/kill_soak.py [--kills 50] [--seed 1] [--max-delay 4] [--keep]

One run directory (tiny preset, checkpoint every step, keep two) is started, killed with
SIGKILL to its process group at a chosen moment, checked, and resumed by the next round:
most kills come after a seeded random delay once the trainer logged its `start` record;
every fifth aims at a checkpoint write (the moment a checkpoint temp file appears) and
every fifth at rotation (the moment a checkpoint's alignment record appears, right before
old checkpoints are deleted). After each kill every listed checkpoint is loaded with
`trainer.checkpoints.load` (weights_only=True), metrics.jsonl is read, every train record
up to the newest checkpoint's step is looked for, and the run must read as `stale`. A last
`voxtop resume` trains two more steps to the end.

Prints kills survived, checkpoints verified, records lost (must be 0), malformed lines
(must be 0), the windows hit, and exits 1 if anything was lost.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

CONFIG = {
    "data": {"dataset": str(ROOT / "datasets" / "demo"), "fraction": 0.08, "val_fraction": 0.1,
             "alignment_text": "Hello there."},
    "model": {"preset": "tiny"},
    "train": {"epochs": 1000, "batch_size": 4, "max_steps": 100_000, "log_every_steps": 1,
              "max_decoder_steps": 30},
    "checkpoint": {"every_steps": 1, "max_to_keep": 2, "keep_best": 1},
}


def mode_of(kill: int) -> str:
    return {1: "checkpoint_write", 3: "rotation"}.get(kill % 5, "random")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-delay", type=float, default=4.0, help="seconds; random kills wait up to this")
    parser.add_argument("--keep", action="store_true", help="keep the run directory and print its path")
    args = parser.parse_args()

    import tomli_w

    from reliability_helpers import kill_once, new_kill_run, temp_files
    from trainer import config as config_mod
    from trainer.rundir import current_history, read_metrics

    work = Path(tempfile.mkdtemp(prefix="voxtop-kill-soak-"))
    config_path = work / "soak.toml"
    config_path.write_text(tomli_w.dumps(CONFIG))
    run = new_kill_run(work / "runs", config_path)
    rng = random.Random(args.seed)
    started = time.monotonic()
    survived, verified, lost, malformed, partial = 0, 0, 0, 0, 0
    windows: Counter[str] = Counter()
    problems = []
    for kill in range(args.kills):
        report = kill_once(run, mode_of(kill), rng, max_delay_s=args.max_delay)
        verified += len(report.checkpoints)
        lost += len(report.records_lost)
        malformed += report.malformed
        partial += report.trailing_partial
        window = "checkpoint temp file on disk" if any(t.startswith("checkpoints/") for t in report.temp_files) \
            else "picture temp file on disk" if report.temp_files else "between files"
        windows[f"{report.mode}: {window}"] += 1
        ok = report.state == "stale" and not report.records_lost and report.malformed == 0
        survived += ok
        if not ok:
            problems.append(report)
        print(f"kill {kill + 1:3d} {report.mode:16} delay {report.delay_s:4.2f} s  resumed from "
              f"{report.resumed_from!s:>4}  checkpoints {report.checkpoints}  temp files {len(report.temp_files)}  "
              f"lost {len(report.records_lost)}  state {report.state}", flush=True)

    newest = run.checkpoints()[-1].step if run.checkpoints() else 0
    config = config_mod.load(run.config_path)
    config.train.max_steps = newest + 2
    run.config_path.write_text(config_mod.dumps(config))
    result = subprocess.run([sys.executable, "-m", "tui.cli", "--runs", str(run.path.parent), "resume", run.name],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    history = current_history(read_metrics(run.metrics_path))
    steps = [r["step"] for r in history if r["kind"] == "train"]
    final_ok = (result.returncode == 0 and steps == list(range(1, newest + 3))
                and (run.read_status() or {}).get("state") == "finished" and not temp_files(run))

    print()
    print(f"kills survived         {survived}/{args.kills}")
    print(f"checkpoints verified   {verified} (every listed checkpoint after every kill, weights_only=True)")
    print(f"records lost           {lost}")
    print(f"malformed lines        {malformed} (trailing partial line after {partial} kill(s))")
    for window, count in sorted(windows.items()):
        print(f"  {window:48} {count}")
    print(f"final resume           {'finished' if final_ok else 'FAILED'}: steps 1..{newest + 2} once each, "
          f"no temp files left")
    print(f"elapsed                {time.monotonic() - started:.0f} s")
    if args.keep:
        print(f"run directory          {run.path}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    for report in problems:
        print(f"PROBLEM: {report}", file=sys.stderr)
    if not final_ok:
        print(result.stdout[-2000:] + result.stderr[-2000:], file=sys.stderr)
    return 0 if survived == args.kills and lost == 0 and malformed == 0 and final_ok else 1


if __name__ == "__main__":
    sys.exit(main())
