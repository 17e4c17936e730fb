"""The TUI and the torch-free trainer modules never import torch or the recogniser (fast start, no GPU libs)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

MODULES = ["tui.app", "tui.cli", "trainer.config", "trainer.rundir", "trainer.dataset", "trainer.overtrain",
           "trainer.health_records",
           "tui.screens.monitor", "tui.screens.params", "tui.screens.datasets", "tui.follow", "tui.gpu"]


@pytest.mark.parametrize("module", MODULES)
def test_module_does_not_import_torch(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} does not exist yet")
    code = (f"import sys, {module}; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchaudio', 'pocketsphinx')); "
            "print(','.join(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"


def test_core_modules_do_not_import_textual() -> None:
    code = ("import sys, trainer.config, trainer.rundir, trainer.dataset, trainer.overtrain, trainer.health_records; "
            "print(any(m.split('.')[0] == 'textual' for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
