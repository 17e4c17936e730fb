"""Headless subcommands for scripts, logs and clusters: watch, script, export (no torch here)."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `watch`, `script` and `export` on the `voxtop` parser."""
