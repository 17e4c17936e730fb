"""Can the health recogniser tell the held-out sentences apart at all? Controls for "understood".

    .venv/bin/python bench/recogniser_control.py

Speaks the twelve English held-out sentences with espeak-ng (the voice that made the demo dataset)
and asks the same recogniser the trainer's health worker uses (forced choice among the sentences
and as many distractors; free recognition for the WER) about three versions of each:

- the espeak-ng audio itself (what a perfect model of the demo voice would say),
- that audio through voxtop's features and vocoder: silence trimmed, log-mel, Griffin-Lim (what a
  perfect mel predictor would give, so the ceiling of any checkpoint's figure),
- a no-speech control: white noise at speech level, as long as the speech (chance: 1 in 24).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trainer.config import DataConfig  # noqa: E402
from trainer.features import MelExtractor  # noqa: E402
from trainer.health import DEFAULT_SENTENCES, make_recogniser, word_error_rate  # noqa: E402
from trainer.synth import GriffinLim  # noqa: E402


def espeak(text: str, rate: int) -> np.ndarray:
    wav = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], check=True, capture_output=True).stdout
    audio, source_rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    import torchaudio

    return torchaudio.functional.resample(torch.from_numpy(audio), source_rate, rate).numpy()


def main() -> int:
    sentences = DEFAULT_SENTENCES["en"]
    data = DataConfig(dataset=".")
    recogniser = make_recogniser("en", sentences, True, print)
    assert recogniser is not None, "no recogniser"
    extractor, vocoder = MelExtractor(data), GriffinLim(data)
    rng = np.random.default_rng(0)
    results: dict[str, list[tuple[bool, float]]] = {"espeak-ng audio": [], "mel -> Griffin-Lim": [],
                                                    "noise (no speech)": []}
    for text in sentences:
        audio = espeak(text, data.sample_rate)
        mel = extractor(extractor.trim(torch.from_numpy(audio))).numpy()
        noise = rng.normal(0, float(np.std(audio)), audio.shape).astype(np.float32)
        for name, version in zip(results, (audio, vocoder(mel), noise)):
            heard, chosen = recogniser.listen(version, data.sample_rate)
            results[name].append((chosen == text, word_error_rate(text, heard)))
    print(f"recogniser: {recogniser.name}; forced choice among {len(recogniser.candidates)} sentences")
    for name, rows in results.items():
        understood = sum(ok for ok, _ in rows)
        print(f"{name:>20}: understood {understood}/{len(rows)}, mean WER {np.mean([w for _, w in rows]):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
