"""The checks that keep the layering: import-linter's contracts and ruff, as the README's test command runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    """The console script of a dev tool beside this Python (installed by `pip install -e '.[dev]'`)."""
    path = Path(sys.executable).with_name(name)
    assert path.exists(), f"{name} is missing: install the dev extras (pip install -e '.[dev]')"
    return str(path)


def test_import_contracts_hold() -> None:
    """pyproject.toml's [tool.importlinter] contracts: the torch-free modules stay torch-free, the TUI too."""
    result = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_finds_nothing() -> None:
    """pyproject.toml's [tool.ruff] rules over the code and the tests."""
    result = subprocess.run([_tool("ruff"), "check", "--no-cache", "tui", "trainer", "tests"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
