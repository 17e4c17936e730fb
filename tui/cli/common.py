"""What every `voxtop` subcommand shares: the one way to fail, JSON output, option parents, argument types.

Nothing here imports torch or the trainer at import time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from tui.plain import visible


class Refused(Exception):
    """Input that a command cannot use; the message says what, where and what to do."""


def fail(message: str) -> int:
    """Print `error: MESSAGE` on stderr and return exit code 1 (a reported failure)."""
    print(f"error: {message}", file=sys.stderr)
    return 1


class VisibleText:
    """A text stream that shows control characters instead of sending them (`tui.plain.visible`), line
    breaks kept: run names, errors, log lines and tags printed by a command are data from disk, and an
    escape sequence in one must not retitle the terminal or clear it. JSON needs nothing: `json.dump`
    escapes control characters itself, so `--json` keeps the exact value."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(visible(text, keep_newlines=True))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, buffer, encoding, ...
        return getattr(self._stream, name)


@contextlib.contextmanager
def visible_output() -> Iterator[None]:
    """Within it, everything printed to stdout and stderr shows control characters as visible stand-ins."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = VisibleText(sys.stdout), VisibleText(sys.stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def fmt(value: Any, digits: int = 4) -> str:
    """A figure for a text table: `-` for none, floats to `digits` places."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def runs_parent() -> argparse.ArgumentParser:
    """`--runs` after the subcommand too (`voxtop train C --runs R`), as well as before it.

    SUPPRESS keeps the subcommand from overwriting the top-level value with its own default.
    """
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--runs", type=Path, default=argparse.SUPPRESS, help="runs folder")
    return parent


def config_parent() -> argparse.ArgumentParser:
    """CONFIG, --name and --set, as `train`, `prepare` and `script` take them."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("config", type=Path, help="TOML config")
    parent.add_argument("--name", help="run-name prefix (default: the dataset folder's name)")
    parent.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value (repeatable)")
    return parent


# --- argument types ----------------------------------------------------------------------------


def seconds_in_range(text: str) -> float:
    """Seconds from 0.1 to 3600 (the TUI's refresh intervals)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text} s is out of range: use 0.1 to 3600")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value
    return parse


def matching(pattern: str, what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not re.match(pattern, text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return text
    return parse
