"""The TUI and the torch-free trainer modules never import torch or the recogniser (fast start, no GPU libs).

A test fails, never skips, when a module listed here is gone. tests/test_static_checks.py checks the same
layering statically (import-linter contracts in pyproject.toml).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

#: The trainer's modules that never import torch or textual: the run contract and what the TUI reads.
TORCH_FREE = ["trainer.config", "trainer.rundir", "trainer.rundir.queries", "trainer.rundir.source", "trainer.dataset",
              "trainer.text", "trainer.overtrain", "trainer.health_records", "trainer.launch",
              "trainer.resume_settings"]
CLI = [f"tui.cli.{name}" for name in ("common", "dataset", "train", "runs", "watch", "script", "export")]
MODULES = ["tui.app", "tui.cli", *CLI, *TORCH_FREE,
           "tui.screens.monitor", "tui.screens.params", "tui.screens.datasets", "tui.follow", "tui.gpu"]


@pytest.mark.parametrize("module", MODULES)
def test_module_does_not_import_torch(module: str) -> None:
    assert importlib.util.find_spec(module) is not None, f"{module} is gone: update this list"
    code = (f"import sys, {module}; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchaudio', 'pocketsphinx')); "
            "print(','.join(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"


def test_core_modules_do_not_import_textual() -> None:
    code = (f"import sys, {', '.join(TORCH_FREE)}; "
            "print(any(m.split('.')[0] in ('textual', 'torch', 'torchaudio') for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
