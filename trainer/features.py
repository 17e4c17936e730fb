"""Log-mel spectrograms (torchaudio) and their on-disk cache, so epoch 2 reads no audio.

The cache lives in the dataset folder (`.voxtop/features/<key>/<id>.npy`), keyed on every
parameter that changes the features, and is shared by all runs on that dataset. Each file
is written atomically, so a killed trainer leaves either a whole feature or none.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio

from trainer.config import DataConfig
from trainer.dataset import Clip
from trainer.rundir import atomic_write

LOG_FLOOR = 1e-5  # clamp before log, as the published Tacotron2 recipe does


class MelExtractor:
    """Audio → log-compressed mel spectrogram `[n_mels, frames]` with the config's STFT settings."""

    def __init__(self, data: DataConfig):
        self.data = data
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=data.sample_rate, n_fft=data.n_fft, win_length=data.win, hop_length=data.hop,
            f_min=data.fmin, f_max=data.fmax, n_mels=data.n_mels, power=1.0, norm="slaney",
            mel_scale="slaney", center=True)

    def load_audio(self, path: Path) -> torch.Tensor:
        """Mono float audio at the config's rate (resampled and mixed down if allowed)."""
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        waveform = torch.from_numpy(audio.T.copy())
        if waveform.shape[0] > 1:
            waveform = waveform.mean(dim=0, keepdim=True)
        if rate != self.data.sample_rate:
            waveform = torchaudio.functional.resample(waveform, rate, self.data.sample_rate)
        return waveform[0]

    def trim(self, waveform: torch.Tensor) -> torch.Tensor:
        """The clip without leading and trailing silence (quieter than `trim_db` below its loudest part).

        Loudness is measured in windows of one hop (about 12 ms at 22 kHz), half a hop apart, so the
        cut lands within a few milliseconds of the speech; one hop of margin is kept on each side so
        the onset and the release of the outer sounds survive. A clip with no sound at all is
        returned whole: the dataset check reports such clips, not the cache.
        """
        length, step = self.data.hop, max(1, self.data.hop // 2)
        if not self.data.trim_silence or waveform.numel() < length:
            return waveform
        rms = waveform.unfold(0, length, step).pow(2).mean(dim=1).sqrt()
        if float(rms.max()) <= 1e-10:
            return waveform
        level_db = 20 * torch.log10(rms.clamp(min=1e-10))
        loud = torch.nonzero(level_db > level_db.max() - self.data.trim_db).flatten()
        start = max(0, int(loud[0]) * step - length)
        end = min(waveform.numel(), int(loud[-1]) * step + 2 * length)
        return waveform[start:end]

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.log(torch.clamp(self.mel(waveform), min=LOG_FLOOR))


def cache_key(data: DataConfig) -> str:
    """A short digest of everything that changes the features."""
    fields = {k: getattr(data, k) for k in ("sample_rate", "n_fft", "hop", "win", "n_mels", "fmin",
                                             "fmax", "resample", "trim_silence")}
    if data.trim_silence:  # the threshold changes the features only when trimming is on
        fields["trim_db"] = data.trim_db
    fields["version"] = 3  # 3: silence trimming in hop-long windows
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def cache_folder(data: DataConfig) -> Path:
    dataset = Path(data.dataset)
    if os.access(dataset, os.W_OK):
        return dataset / ".voxtop" / "features" / cache_key(data)
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voxtop" / "features"
    return home / hashlib.sha1(str(dataset.resolve()).encode()).hexdigest()[:16] / cache_key(data)


class FeatureCache:
    """Mel features of a dataset's clips, computed once and read from disk afterwards."""

    def __init__(self, data: DataConfig):
        self.data = data
        self.folder = cache_folder(data)
        self._extractor: MelExtractor | None = None

    def path(self, clip: Clip) -> Path:
        return self.folder / f"{clip.id}.npy"

    def missing(self, clips: list[Clip]) -> list[Clip]:
        return [clip for clip in clips if not self.path(clip).exists()]

    def build(self, clips: list[Clip], log: object = None) -> int:
        """Compute features that are not cached yet; returns how many were computed."""
        todo = self.missing(clips)
        if not todo:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        extractor = self._extractor or MelExtractor(self.data)
        self._extractor = extractor
        for done, clip in enumerate(todo, 1):
            waveform = extractor.trim(extractor.load_audio(Path(self.data.dataset) / clip.wav))
            mel = extractor(waveform).numpy().astype(np.float32)
            atomic_write(self.path(clip), lambda handle, mel=mel: np.save(handle, mel))
            if log is not None and (done % 200 == 0 or done == len(todo)):
                log(f"features: {done}/{len(todo)} clips computed")  # type: ignore[operator]
        return len(todo)

    def load(self, clip: Clip) -> np.ndarray:
        return np.load(self.path(clip))

    def frames(self, clip: Clip) -> int:
        """Frame count from the .npy header alone (no data read)."""
        return int(np.load(self.path(clip), mmap_mode="r").shape[1])
