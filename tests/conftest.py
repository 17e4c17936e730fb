"""Shared fixtures: small LJSpeech datasets built in the test, real WAV files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

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
