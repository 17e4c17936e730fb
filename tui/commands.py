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

from trainer.rundir import RunDir, RunError, current_history, read_metrics


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


def run_summary(run: RunDir) -> dict[str, Any]:
    """State, progress and the last losses of a run, for `voxtop runs`."""
    status = run.read_status() or {}
    summary: dict[str, Any] = {
        "name": run.name, "path": str(run.path), "state": run.effective_state(status),
        "step": status.get("step"), "total_steps": status.get("total_steps"), "epoch": status.get("epoch"),
        "started_at": status.get("started_at"), "error": status.get("error"),
        "train_loss": None, "val_loss": None, "attention_score": None,
    }
    for record in current_history(read_metrics(run.metrics_path)):
        if record["kind"] == "train":
            summary["train_loss"] = record.get("loss")
            summary["attention_score"] = record.get("attention_score")
        elif record["kind"] == "val":
            summary["val_loss"] = record.get("loss")
    return summary


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def cmd_runs(args: argparse.Namespace) -> int:
    from trainer.rundir import list_runs

    summaries = [run_summary(run) for run in list_runs(args.runs)]
    if args.json:
        json.dump(summaries, sys.stdout, indent=2)
        print()
        return 0
    if not summaries:
        print(f"no runs in {args.runs}")
        return 0
    print(f"{'RUN':32} {'STATE':9} {'STEP':>13} {'EPOCH':>6} {'TRAIN':>8} {'VAL':>8} {'ATTN':>6}  STARTED")
    for s in summaries:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(s["started_at"])) if s["started_at"] else "-"
        step = f"{_fmt(s['step'])}/{_fmt(s['total_steps'])}"
        print(f"{s['name']:32} {s['state']:9} {step:>13} {_fmt(s['epoch']):>6} {_fmt(s['train_loss']):>8} "
              f"{_fmt(s['val_loss']):>8} {_fmt(s['attention_score'], 3):>6}  {started}")
    return 0


def analyse_run(run: RunDir) -> dict[str, Any]:
    """The overtraining analysis of a run from its metrics alone, with the run's detector settings."""
    from trainer import config as config_mod
    from trainer.overtrain import DetectorConfig, analyse

    try:
        schedule = config_mod.load(run.config_path).schedule
        detector = DetectorConfig(smoothing=schedule.overtraining_smoothing,
                                  patience=schedule.overtraining_patience)
    except config_mod.ConfigError:
        detector = DetectorConfig()
    existing = {c.step for c in run.checkpoints()}
    return analyse(read_metrics(run.metrics_path), detector, existing=existing)


def checkpoint_rows(run: RunDir, analysis: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Resumable checkpoints, newest first, with val loss, read-through health and tags (`recommended`, ...).

    `health` is the checkpoint's checked health record (`HealthSummary.as_json`), null while not
    computed (or never); `recommended` follows `trainer.overtrain.recommend`.
    """
    from trainer.health_records import health_by_step

    records = read_metrics(run.metrics_path)
    recorded = {}
    for record in current_history(records):
        if record["kind"] == "checkpoint" and isinstance(record.get("step"), int):
            recorded[record["step"]] = record
    health = health_by_step(records)
    analysed = (analysis or analyse_run(run))["tags"]
    rows = []
    for found in reversed(run.checkpoints()):
        record = recorded.get(found.step, {})
        # a record's `best` meant "best so far" when it was saved; `recommended` is the best now
        tags = [t for t in analysed.get(found.step, record.get("tags") or []) if t != "best"]
        checked = health.get(found.step)
        rows.append({"step": found.step, "path": str(found.path), "time": found.mtime,
                     "size_mb": round(found.size / 2**20, 2), "val_loss": record.get("val_loss"),
                     "health": checked.as_json() if checked is not None else None, "tags": tags})
    return rows


def _health_cells(health: dict[str, Any] | None, pending: bool) -> tuple[str, str]:
    """(reads to the end, understood) for the text listing: `10/12`, `3/12`, `-`; `…` while pending."""
    if health is None:
        return ("…", "…") if pending else ("-", "-")
    n = health["sentences"]
    understood = "-" if health["understood"] is None else f"{health['understood']}/{n}"
    return f"{health['read_through']}/{n}", understood


def cmd_checkpoints(args: argparse.Namespace) -> int:
    from trainer.rundir import resolve_run

    try:
        run = resolve_run(args.runs, args.run)
    except RunError as exc:
        return _fail(str(exc))
    analysis = analyse_run(run)
    rows = checkpoint_rows(run, analysis)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    if not rows:
        print(f"{run.name}: no checkpoints yet")
        return 0
    from trainer.rundir import ACTIVE_STATES

    pending = run.effective_state() in ACTIVE_STATES
    print(f"{'STEP':>9}  {'SAVED':16}  {'VAL LOSS':>9}  {'READS':>5}  {'UNDERSTOOD':>10}  {'SIZE':>9}  TAGS")
    for row in rows:
        saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["time"]))
        reads, understood = _health_cells(row["health"], pending)
        print(f"{row['step']:>9}  {saved:16}  {_fmt(row['val_loss']):>9}  {reads:>5}  {understood:>10}  "
              f"{row['size_mb']:>6.1f} MB  {', '.join(row['tags'])}")
    if analysis.get("recommended") is not None:
        print(f"recommended: step {analysis['recommended']} ({analysis['recommended_reason']})")
    if any(row["health"] for row in rows) or pending:
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
