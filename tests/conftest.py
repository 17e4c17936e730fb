"""Shared fixtures: small LJSpeech datasets built in the test, real WAV files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

# One OpenMP thread per trainer the tests start: with two cores, two trainers (or a trainer
# beside the TUI) with a thread per core each spin-wait on one another and crawl.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "datasets" / "demo"
VOXTOP = [sys.executable, "-m", "tui.cli"]


def write_wav(path: Path, seconds: float = 0.5, rate: int = 22050, channels: int = 1,
              freq: float = 220.0) -> Path:
    """A real 16-bit PCM sine tone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * freq * t)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    soundfile.write(str(path), data, rate, subtype="PCM_16")
    return path


def make_dataset(root: Path, lines: list[str], wavs: dict[str, dict] | None = None) -> Path:
    """A dataset folder with `lines` as metadata.csv and a wav for each id (or as `wavs` says)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "wavs").mkdir(exist_ok=True)
    if wavs is None:
        wavs = {line.split("|")[0].removesuffix(".wav"): {} for line in lines}
    for clip_id, options in wavs.items():
        write_wav(root / "wavs" / f"{clip_id}.wav", **options)
    return root


@pytest.fixture
def good_dataset(tmp_path: Path) -> Path:
    lines = [f"clip{i:02d}|Sentence number {i}, said clearly." for i in range(6)]
    return make_dataset(tmp_path / "good", lines)


# --- trainer runs ---------------------------------------------------------------------

TINY = {
    "data": {"dataset": str(DEMO), "fraction": 0.08, "val_fraction": 0.1,
             "alignment_text": "Hello there."},
    "model": {"preset": "tiny"},
    "train": {"epochs": 100, "batch_size": 4, "max_steps": 6, "log_every_steps": 1,
              "max_decoder_steps": 30},
    "checkpoint": {"every_steps": 3, "max_to_keep": 5},
    "health": {"enabled": False},  # its own tests turn it on: each checkpoint would start a worker
}


def tiny_config(tmp_path: Path, **sections: dict) -> Path:
    """A TOML config for a tiny CPU run on a few demo clips; `sections` override keys."""
    import tomli_w

    merged = {name: dict(values) for name, values in TINY.items()}
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    path = tmp_path / "tiny.toml"
    path.write_text(tomli_w.dumps(merged))
    return path


def voxtop(*args: str, runs: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the `voxtop` CLI to completion."""
    return subprocess.run([*VOXTOP, "--runs", str(runs), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def only_run(runs: Path) -> Path:
    found = [p for p in runs.iterdir() if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


def wait_for(predicate, timeout: float = 120, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
