"""DC-TTS's features: the cached log mel in [0, 1], coarse (every 4th frame), and linear magnitudes.

The paper's networks end in a sigmoid and learn with a binary divergence, so their targets lie in
[0, 1]: decibels relative to a reference, `(dB − REF_DB + RANGE_DB) / RANGE_DB`, clipped. The mel is
`trainer.features`' cached log mel (same trimming, same frames), so Tacotron2 and DC-TTS runs on a
dataset share that cache; the linear magnitude (`n_fft // 2 + 1` bins) has a cache of its own beside
it, keyed the same way plus `-linear`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from trainer.config import DataConfig
from trainer.dataset import Clip
from trainer.features import FeatureCache, MelExtractor, audio_key, cache_folder, wav_path
from trainer.rundir import atomic_write

#: dB of a log mel value 0 is 20·log10(e)·value; REF_DB maps to 1, REF_DB − RANGE_DB to 0.
MEL_REF_DB, LINEAR_REF_DB, RANGE_DB = 20.0, 40.0, 100.0
_DB_PER_NEPER = 20.0 / math.log(10.0)


def normalise_log(log_magnitude: np.ndarray | torch.Tensor, ref_db: float) -> np.ndarray | torch.Tensor:
    """Natural-log magnitude → [0, 1] (the networks' sigmoid range)."""
    scaled = (log_magnitude * _DB_PER_NEPER - ref_db + RANGE_DB) / RANGE_DB
    return scaled.clip(0.0, 1.0) if isinstance(scaled, np.ndarray) else scaled.clamp(0.0, 1.0)


def denormalise_log(values: np.ndarray | torch.Tensor, ref_db: float) -> np.ndarray | torch.Tensor:
    """[0, 1] → natural-log magnitude (the inverse of `normalise_log` above its floor)."""
    return (values * RANGE_DB - RANGE_DB + ref_db) / _DB_PER_NEPER


def coarse(mel: np.ndarray, reduction: int) -> np.ndarray:
    """Every `reduction`-th frame of a mel `[n_mels, frames]` (the paper's S)."""
    return mel[:, ::reduction]


class LinearCache:
    """Normalised linear magnitudes `[n_fft // 2 + 1, frames]` (float16) of a dataset's clips."""

    def __init__(self, data: DataConfig):
        self.data = data
        mel_folder = cache_folder(data)
        self.folder = mel_folder.parent / f"{mel_folder.name}-linear"
        self._extractor: MelExtractor | None = None

    def path(self, clip: Clip) -> Path:
        """The clip's file, named by its id and what its wav is (`audio_key`): a re-recorded wav gets a new one.

        The id is checked first (`wav_path`): a clip from a cache on disk never names a file outside."""
        return self.folder / f"{clip.id}.{audio_key(wav_path(self.data, clip))}.npy"

    def usable(self, values: object) -> bool:
        """Whether a cached file holds what was written: finite float16 `[n_fft // 2 + 1, frames]` in [0, 1]."""
        return (isinstance(values, np.ndarray) and values.dtype == np.float16 and values.ndim == 2
                and values.shape[0] == self.data.n_fft // 2 + 1 and values.shape[1] > 0
                and bool(np.isfinite(values).all()))

    def build(self, clips: list[Clip], log: object = None) -> int:
        """Compute what is not cached yet; the same trimming as the mel, so the frames line up."""
        todo = [clip for clip in clips if not self.path(clip).is_file()]
        if not todo:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        extractor = self._extractor = self._extractor or MelExtractor(self.data)
        window = torch.hann_window(self.data.win)
        for done, clip in enumerate(todo, 1):
            waveform = extractor.trim(extractor.load_audio(wav_path(self.data, clip)))
            with torch.no_grad():
                spectrum = torch.stft(waveform, self.data.n_fft, self.data.hop, self.data.win, window,
                                      center=True, return_complex=True).abs()
                linear = normalise_log(torch.log(spectrum.clamp(min=1e-5)), LINEAR_REF_DB)
            values = linear.numpy().astype(np.float16)
            atomic_write(self.path(clip), lambda handle, v=values: np.save(handle, v))
            if log is not None and (done % 200 == 0 or done == len(todo)):
                log(f"linear features: {done}/{len(todo)} clips computed")  # type: ignore[operator]
        return len(todo)

    def load(self, clip: Clip) -> np.ndarray:
        """The clip's linear magnitudes; a damaged or foreign file is computed again, never trained on."""
        path = self.path(clip)
        try:
            values = np.load(path, allow_pickle=False) if path.is_file() else None
        except (OSError, ValueError):
            values = None
        if not self.usable(values):
            path.unlink(missing_ok=True)
            self.build([clip])
            values = np.load(path, allow_pickle=False)
        return values.astype(np.float32)


def mel_cache_and_linear(data: DataConfig) -> tuple[FeatureCache, LinearCache]:
    return FeatureCache(data), LinearCache(data)
