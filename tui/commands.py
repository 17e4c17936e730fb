"""The run-related subcommands of `voxtop` (train, resume, runs, checkpoints) and the TUI door.

None of this imports torch: the trainer always runs as its own process.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from trainer.rundir import RunDir, RunError
from tui.states import state_word


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def run_foreground(run: RunDir, checkpoint: Path | None = None) -> int:
    """Run the trainer as a child, echoing its output to the terminal and appending it to train.log.

    Ctrl-C reaches the child too (same process group), which saves and stops; we only wait.
    SIGTERM and SIGHUP (a closed tmux pane or SSH session) sent to this process alone are passed
    on as SIGTERM, so the trainer saves and stops instead of training on with no one reading it.
    """
    from trainer.launch import trainer_command

    command = trainer_command(run, checkpoint)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with open(run.log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=_unbuffered_env())

            def pass_on(_signum: int, _frame: object) -> None:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)

            signal.signal(signal.SIGTERM, pass_on)
            signal.signal(signal.SIGHUP, pass_on)
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                log.flush()
                try:
                    sys.stdout.buffer.write(line)
                    sys.stdout.flush()
                except OSError:
                    pass  # the terminal is gone (SIGHUP); train.log still gets every line
            return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _unbuffered_env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def cmd_train(args: argparse.Namespace) -> int:
    from trainer.launch import prepare_run
    from tui.headless import Refused, load_checked_config

    try:
        config = load_checked_config(args.config, args.set)
        run = prepare_run(args.runs, config, args.name)
    except (Refused, RunError) as exc:
        return _fail(str(exc))
    print(f"run directory: {run.path}", flush=True)
    return run_foreground(run)


def cmd_resume(args: argparse.Namespace) -> int:
    from trainer.rundir import resolve_run

    try:
        run = resolve_run(args.runs, args.run)
        checkpoint = run.resolve_checkpoint(args.checkpoint) if args.checkpoint else None
    except RunError as exc:
        return _fail(str(exc))
    if run.is_locked():
        return _fail(f"{run.path} is already being trained; stop it first (voxtop runs shows it)")
    if checkpoint is None and not run.checkpoints():
        return _fail(f"{run.path} has no checkpoint to resume from")
    if args.set:
        from tui.headless import Refused, apply_resume_settings

        try:
            changes = apply_resume_settings(run, args.set)
        except Refused as exc:
            return _fail(str(exc))
        for change in changes:
            print(f"config.toml: {change}", flush=True)
    return run_foreground(run, checkpoint)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def cmd_runs(args: argparse.Namespace) -> int:
    from trainer.rundir.source import list_sources

    summaries = [source.summary() for source in list_sources(args.runs)]
    if args.json:
        json.dump([s.as_json() for s in summaries], sys.stdout, indent=2)
        print()
        return 0
    if not summaries:
        print(f"no runs in {args.runs}")
        return 0
    print(f"{'RUN':32} {'STATE':14} {'STEP':>13} {'EPOCH':>6} {'TRAIN LOSS':>10} {'VAL LOSS':>9} {'VAL ATTN':>8}  STARTED")
    for s in summaries:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.started_at)) if s.started_at else "-"
        step = f"{s.step}/{s.total_steps or '-'}"
        print(f"{s.name:32} {state_word(s.state):14} {step:>13} {s.epoch:>6} {_fmt(s.train_loss):>10} "
              f"{_fmt(s.val_loss):>9} {_fmt(s.val_attention, 3):>8}  {started}")
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
        return _fail(str(exc))
    table = run.checkpoint_table(sentences=args.json)
    if args.json:
        json.dump([row.as_json() for row in table.rows], sys.stdout, indent=2)
        print()
        return 0
    if not table.rows:
        print(f"{run.name}: no checkpoints yet")
        return 0
    pending = run.state() in ACTIVE_STATES
    print(f"{'STEP':>9}  {'SAVED':16}  {'VAL LOSS':>9}  {'READS':>5}  {'UNDERSTOOD':>10}  {'SIZE':>9}  TAGS")
    for row in table.rows:
        saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.mtime))
        reads, understood = _health_cells(row.health, pending)
        print(f"{row.step:>9}  {saved:16}  {_fmt(row.val_loss):>9}  {reads:>5}  {understood:>10}  "
              f"{row.size / 2**20:>6.1f} MB  {', '.join(row.tags)}")
    if table.recommended is not None:
        print(f"recommended: step {table.recommended} ({table.recommended_reason})")
    if any(row.health for row in table.rows) or pending:
        print("READS: held-out sentences read to the end (reached the last character, stopped, monotonic); "
              "UNDERSTOOD: picked out by a speech recogniser")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the run subcommands on the `voxtop` parser."""
    # `voxtop train C --runs R` as well as `voxtop --runs R train C`; SUPPRESS keeps the
    # subcommand from overwriting the top-level value with its own default.
    runs_option = argparse.ArgumentParser(add_help=False)
    runs_option.add_argument("--runs", type=Path, default=argparse.SUPPRESS, help="runs folder")
    parents = [runs_option]
    train = sub.add_parser("train", parents=parents, help="start a run in the foreground from a TOML config")
    train.add_argument("config", type=Path)
    train.add_argument("--name", help="run-name prefix (default: the dataset folder's name)")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a config value (repeatable)")
    train.set_defaults(func=cmd_train)

    resume = sub.add_parser("resume", parents=parents, help="continue a run from its newest (or a chosen) checkpoint")
    resume.add_argument("run", help="run name (in the runs folder) or path")
    resume.add_argument("--checkpoint", help="checkpoint file to resume from")
    resume.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="change a setting of the run before resuming, e.g. train.epochs=1000 to "
                             "train longer (repeatable; [train], [checkpoint], [schedule], [health], [device])")
    resume.set_defaults(func=cmd_resume)

    runs = sub.add_parser("runs", parents=parents, help="list runs with state, progress and last losses")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(func=cmd_runs)

    checkpoints = sub.add_parser("checkpoints", parents=parents, help="list a run's resumable checkpoints, newest first")
    checkpoints.add_argument("run", help="run name (in the runs folder) or path")
    checkpoints.add_argument("--json", action="store_true")
    checkpoints.set_defaults(func=cmd_checkpoints)


def open_tui(args: argparse.Namespace) -> int:
    """Open the Textual app on the datasets and runs folders."""
    from tui.app import VoxtopApp

    VoxtopApp(datasets_root=args.datasets, runs_root=args.runs, gpu_refresh_s=args.gpu_refresh).run()
    return 0
