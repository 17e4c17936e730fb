"""The `voxtop` command: the TUI by default, plus the subcommands. All command-line code lives here.

The rule: each module of this package owns one group of subcommands and exposes
`add_parser(sub)`, which registers them with their options and their `cmd_*` functions;
`COMMANDS` below lists the modules in the order `voxtop --help` shows them, and
`build_parser` is the only place that assembles the parser. What more than one command
needs (the one `fail()`, JSON output, the `--runs` and CONFIG/--name/--set option parents,
argument types) is in `common`. A new subcommand is a new module plus one entry in
`COMMANDS`.

Nothing here imports torch at import time: trainer modules are imported inside the
commands, so `voxtop --help` and the TUI never pay for torch (only `export` needs it).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any, Sequence

from tui.cli.common import fail, seconds_in_range, visible_output

#: The subcommand modules of this package, in help order.
COMMANDS = ("dataset", "train", "runs", "watch", "metrics", "launch", "script", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxtop", description="Launch, watch and resume speech-model training from the terminal.")
    parser.add_argument("--datasets", type=Path, default=Path("datasets"), help="datasets folder")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="runs folder")
    parser.add_argument("--gpu-refresh", type=seconds_in_range, default=1.0, metavar="SECONDS",
                        help="seconds between GPU samples in the TUI (default 1)")
    sub = parser.add_subparsers(dest="command")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def open_tui(args: argparse.Namespace) -> int:
    """Open the Textual app on the datasets and runs folders."""
    from tui.app import VoxtopApp

    run_then_leave(VoxtopApp(datasets_root=args.datasets, runs_root=args.runs, gpu_refresh_s=args.gpu_refresh))
    return 0


#: How long quitting waits for thread workers to finish what they are doing before leaving without them.
WORKER_GRACE_S = 1.0


def run_then_leave(app: Any, **run_options: Any) -> Any:
    """Run a Textual app; once it has quit, leave even if a thread worker is still blocked.

    `App.run()` ends in `asyncio.run()`, which waits for every thread of the default executor: a
    worker stuck on a file (a stalled network disk, a device) would keep the process, and the
    terminal, forever after `q`. Here the app runs on a loop with an executor of its own; when
    the app is done, a worker that has not finished within WORKER_GRACE_S is left behind: the
    process ends at once (its output flushed), as every worker's result is moot by then.
    """
    import asyncio
    import os
    import time
    from concurrent.futures import ThreadPoolExecutor

    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(thread_name_prefix="voxtop-worker")
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    try:
        result = app.run(loop=loop, **run_options)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        threads = list(getattr(executor, "_threads", ()))
        deadline = time.monotonic() + WORKER_GRACE_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(getattr(app, "return_code", None) or 0)
        asyncio.set_event_loop(None)
        loop.close()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return open_tui(args)
    language = getattr(args, "language", None)
    if language is not None:
        from trainer.text import LANGUAGES

        if language not in LANGUAGES:
            parser.error(f"--language {language!r}: choose one of {', '.join(LANGUAGES)}")
    try:
        with visible_output():  # what a command prints from disk is data, never a terminal control sequence
            try:
                return int(args.func(args) or 0)
            except OSError as exc:  # a read-only folder, a full disk, a symlink loop: a sentence, not a traceback
                from trainer.rundir.faults import describe_os_error

                return fail(describe_os_error(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
