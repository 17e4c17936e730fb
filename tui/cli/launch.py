"""`voxtop launch`: start any trainer's command detached, watched like voxtop's own runs (`trainer.foreign.launched`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from tui.cli.common import fail, runs_parent

LAUNCH_HELP = """\
Start COMMAND (everything after --) as voxtop starts its own trainer: in its own session, so a
dropped SSH connection, a closed tmux pane or quitting voxtop never stops it. Its output goes to
train.log in a new run folder under --runs, status.json says running, then finished or failed
with the exit code. `voxtop watch NAME` follows it; stopping it (the Monitor's s key) sends the
command SIGINT first (RVC, Applio, Coqui and Lightning save on Ctrl-C), then SIGTERM if it is still
running a minute later. --logdir names the folder the command writes its TensorBoard logs (or
DLLogger, metrics.csv) and checkpoints to: its curves, overtraining verdict and checkpoints come
from there. The command gets VOXTOP_RUN_DIR and VOXTOP_LOGDIR in its environment.

  voxtop launch --name myvoice --logdir logs/myvoice -- python core.py train --model_name myvoice"""


def cmd_launch(args: argparse.Namespace) -> int:
    from trainer.foreign.launched import launch
    from trainer.rundir import RunError
    from tui.plain import visible

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        return fail("nothing to launch: put the command after --, e.g. voxtop launch -- python train.py")
    try:
        run = launch(args.runs, command, name=args.name, logdir=args.logdir)
    except (RunError, OSError) as exc:
        return fail(str(exc))
    print(f"launched {visible(run.name)}: {run.path}")
    print(f"follow it: voxtop --runs {args.runs} watch {visible(run.name)}")
    return 0


def _point_lines(records: list[dict[str, Any]]) -> list[str]:
    """A line per new watched (`val`) point, and one for the newest train point of a poll."""
    lines = []
    newest_train = None
    for record in records:
        if record.get("kind") == "val":
            lines.append(f"step {record['step']}: {record.get('tag')} {record['loss']:.5g}")
        elif record.get("kind") == "train":
            newest_train = record
        elif record.get("kind") == "start":
            lines.append(f"step {record['step']}: logged again from here (a restart)")
    if newest_train is not None:
        lines.append(f"step {newest_train['step']}: {newest_train.get('tag')} {newest_train['loss']:.5g}")
    return lines


def follow_foreign(source: Any, interval_s: float = 1.0, out: TextIO | None = None,
                   sleep: Callable[[float], None] = time.sleep) -> int:
    """`voxtop watch` of another trainer's folder: its watched points as they come, while it writes them
    (a minute without a write ends it), then the verdict, the minima and the recommended checkpoint."""
    from tui.plain import visible

    out = out or sys.stdout

    def emit(line: str) -> None:
        out.write(visible(line) + "\n")
        out.flush()

    reader = source.metrics_reader()
    label = getattr(getattr(source, "layout", None), "label", "another trainer")
    emit(f"{source.name}: a {label} run in {source.path}")
    for line in _point_lines(reader.read_new())[-10:]:
        emit(line)
    while source.state() == "running":
        sleep(interval_s)
        for line in _point_lines(reader.read_new()):
            emit(line)
    analysis = source.analysis()
    verdict = analysis.verdict
    emit(f"voxtop: {source.name}: no new logs for a minute; "
         + (f"{verdict.verdict} on {analysis.verdict_tag}: {verdict.message}" if verdict else "nothing logged yet"))
    for minimum in analysis.minima:
        near = f"checkpoint at step {minimum.checkpoint_step}" if minimum.checkpoint_step is not None \
            else "no checkpoint near it"
        emit(f"minimum of {analysis.minima_tag} at step {minimum.step} ({minimum.value:.5g}): {near}")
    if analysis.recommended is not None:
        emit(f"recommended: step {analysis.recommended} ({analysis.recommended_reason})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `launch`."""
    launch = sub.add_parser("launch", parents=[runs_parent()], help="start any trainer's command detached, "
                            "watched like voxtop's own runs", description=LAUNCH_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    launch.add_argument("--name", help="run-name prefix (default: the script's or program's name)")
    launch.add_argument("--logdir", type=Path, help="where the command writes its logs and checkpoints")
    launch.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    launch.set_defaults(func=cmd_launch)
