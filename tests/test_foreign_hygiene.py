"""Reading other trainers' runs costs a TUI start nothing: protobuf, google_crc32c and Pillow load on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("google.protobuf", "google_crc32c", "PIL", "torch", "textual", "tensorboard")
FOREIGN = ["trainer.foreign", "trainer.foreign.tbevents", "trainer.foreign.tbproto", "trainer.foreign.feeds",
           "trainer.foreign.layouts", "trainer.foreign.checkpoints", "trainer.foreign.history",
           "trainer.foreign.sources", "trainer.foreign.launched", "trainer.rundir.source"]


@pytest.mark.parametrize("module", [*FOREIGN, "tui.app"])
def test_importing_loads_no_decoder(module: str) -> None:
    heavy = HEAVY if module != "tui.app" else HEAVY[:3]
    code = (f"import sys, {module}; "
            f"print(','.join(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in {heavy!r}))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"importing {module} loaded {result.stdout.strip()}"
