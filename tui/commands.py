"""The run-related subcommands of `voxtop` (train, resume, runs, checkpoints, ...) and the TUI door."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the run subcommands on the `voxtop` parser."""


def open_tui(args: argparse.Namespace) -> int:
    """Open the Textual app on the datasets and runs folders."""
    from tui.app import VoxtopApp

    VoxtopApp(datasets_root=args.datasets, runs_root=args.runs).run()
    return 0
