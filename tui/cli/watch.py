"""`voxtop watch`: follow a run as plain text until it ends (the follower itself is `tui.watch`)."""

from __future__ import annotations

import argparse
import os
import sys

from tui.cli.common import fail, int_at_least, positive_float, runs_parent


WATCH_HELP = """\
Print a run's progress lines (train.log) and events (metrics.jsonl) as they arrive, in
plain text for logs, CI and `tmux pipe-pane`, and exit when the run ends, with its
status: 0 finished, early-stopped or stopped; 1 failed, or stale (the trainer was
killed). Like `tail -f`, it first shows the last --lines lines (all of them with
--from-start); on a run that has already ended it prints those and a summary line and
exits at once. Each poll reads only the bytes appended since the last one."""


def cmd_watch(args: argparse.Namespace) -> int:
    from trainer.rundir import RunError, resolve_run
    from tui.watch import watch

    try:
        run = resolve_run(args.runs, args.run)
    except RunError as exc:
        from trainer.rundir.source import open_run
        from tui.cli.launch import follow_foreign

        try:  # a command started by `voxtop launch` (status and log), or another trainer's folder
            source = open_run(args.runs, args.run)
        except RunError:
            return fail(f"{exc}; `voxtop runs` lists the runs in {args.runs}")
        run = getattr(source, "run", None)
        if run is None:
            return follow_foreign(source, interval_s=args.interval)
    try:
        return watch(run, from_start=args.from_start, tail_lines=args.lines, interval_s=args.interval)
    except BrokenPipeError:  # `voxtop watch RUN | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `watch`."""
    parents = [runs_parent()]
    watch = sub.add_parser("watch", parents=parents, help="follow a run as plain text until it ends",
                           description=WATCH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    watch.add_argument("run", help="run name (in the runs folder) or path")
    watch.add_argument("--from-start", action="store_true", help="print the whole log first")
    watch.add_argument("--lines", type=int_at_least(0), default=10, metavar="N",
                       help="log lines of context to show first (default 10)")
    watch.add_argument("--interval", type=positive_float, default=1.0, metavar="S",
                       help="seconds between polls (default 1)")
    watch.set_defaults(func=cmd_watch)
