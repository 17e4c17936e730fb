"""`voxtop runs` and `voxtop checkpoints`: what the runs are doing, and which checkpoint to keep.

Both ask the run's `RunSource` (`trainer.rundir.source`), as the Runs screen and the Monitor do.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from trainer.rundir import RunError
from tui.cli.common import fail, fmt, print_json, runs_parent
from tui.states import state_word


def cmd_runs(args: argparse.Namespace) -> int:
    from trainer.rundir.source import list_sources

    summaries = [source.summary() for source in list_sources(args.runs)]
    if args.json:
        print_json([s.as_json() for s in summaries])
        return 0
    if not summaries:
        print(f"no runs in {args.runs}")
        return 0
    print(f"{'RUN':32} {'STATE':14} {'STEP':>13} {'EPOCH':>6} {'TRAIN LOSS':>10} {'VAL LOSS':>9} {'VAL ATTN':>8}  STARTED")
    for s in summaries:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.started_at)) if s.started_at else "-"
        step = f"{s.step}/{s.total_steps or '-'}"
        print(f"{s.name:32} {state_word(s.state):14} {step:>13} {s.epoch:>6} {fmt(s.train_loss):>10} "
              f"{fmt(s.val_loss):>9} {fmt(s.val_attention, 3):>8}  {started}")
    for s in summaries:  # why a run is not responding or cannot be read, with the heartbeat's age
        if s.state in ("stale", "unreadable") and s.error:
            print(f"{s.name}: {s.error}")
    return 0


def _health_cells(health: Any, pending: bool) -> tuple[str, str]:
    """(reads to the end, understood) for the text listing: `10/12`, `3/12`, `-`; `…` while pending."""
    if health is None:
        return ("…", "…") if pending else ("-", "-")
    return health.reads_text(), health.understood_text()


def cmd_checkpoints(args: argparse.Namespace) -> int:
    from trainer.rundir import ACTIVE_STATES
    from trainer.rundir.source import open_run

    try:
        run = open_run(args.runs, args.run)
    except RunError as exc:
        return fail(str(exc))
    table = run.checkpoint_table(sentences=args.json)
    if args.json:
        print_json([row.as_json() for row in table.rows])
        return 0
    if not table.rows:
        print(f"{run.name}: no checkpoints yet")
        return 0
    pending = run.state() in ACTIVE_STATES
    print(f"{'STEP':>9}  {'SAVED':16}  {'VAL LOSS':>9}  {'READS':>5}  {'UNDERSTOOD':>10}  {'SIZE':>9}  TAGS")
    for row in table.rows:
        saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.mtime))
        reads, understood = _health_cells(row.health, pending)
        print(f"{row.step:>9}  {saved:16}  {fmt(row.val_loss):>9}  {reads:>5}  {understood:>10}  "
              f"{row.size / 2**20:>6.1f} MB  {', '.join(row.tags)}")
    if table.recommended is not None:
        print(f"recommended: step {table.recommended} ({table.recommended_reason})")
    if any(row.health for row in table.rows) or pending:
        print("READS: held-out sentences read to the end (reached the last character, stopped, monotonic); "
              "UNDERSTOOD: picked out by a speech recogniser")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `runs` and `checkpoints`."""
    parents = [runs_parent()]
    runs = sub.add_parser("runs", parents=parents, help="list runs with state, progress and last losses")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(func=cmd_runs)

    checkpoints = sub.add_parser("checkpoints", parents=parents, help="list a run's resumable checkpoints, newest first")
    checkpoints.add_argument("run", help="run name (in the runs folder) or path")
    checkpoints.add_argument("--json", action="store_true")
    checkpoints.set_defaults(func=cmd_checkpoints)
