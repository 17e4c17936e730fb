"""Log-mel spectrograms (torchaudio) and their on-disk cache, so epoch 2 reads no audio.

The cache lives in the dataset folder (`.voxtop/features/<key>/<id>.<audio>.npy`), keyed on every
parameter that changes the features, and is shared by all runs on that dataset. `<audio>` is a
digest of what the wav is (size, mtime and inode), so a re-recorded or replaced wav is computed
again, never trained on its old features. Each file is written atomically, so a killed trainer
leaves either a whole feature or none; a cached file that is not a finite `[n_mels, frames]`
float array is computed again, not used. Clip ids are checked before they name a file, and only
regular files are read as audio; an error about a clip names the clip.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio

from trainer.config import DataConfig
from trainer.dataset import Clip, clip_id_problem
from trainer.rundir import atomic_write
from trainer.rundir.files import open_regular

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
        """Mono float audio at the config's rate (resampled and mixed down if allowed); only a regular
        file is opened (a FIFO would block forever)."""
        with open_regular(path) as handle:
            audio, rate = soundfile.read(handle, dtype="float32", always_2d=True)
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
    fields["version"] = 4  # 3: silence trimming in hop-long windows; 4: files keyed by the wav's identity
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def cache_folder(data: DataConfig) -> Path:
    dataset = Path(data.dataset)
    if os.access(dataset, os.W_OK):
        return dataset / ".voxtop" / "features" / cache_key(data)
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voxtop" / "features"
    return home / hashlib.sha1(str(dataset.resolve()).encode()).hexdigest()[:16] / cache_key(data)


class ClipError(ValueError):
    """A clip whose features cannot be made or read; the message names the clip and its wav."""


def wav_path(data: DataConfig, clip: Clip) -> Path:
    """`<dataset>/wavs/<id>.wav` of a clip whose id passes the dataset's rule; ClipError otherwise.

    Clips may come from a cache on disk: an id like `../x` must never name a file.
    """
    problem = clip_id_problem(clip.id) if clip.id else "empty id"
    if problem is not None or clip.wav != f"wavs/{clip.id}.wav":
        raise ClipError(f"clip {clip.id!r} cannot be used: {problem or f'its wav is {clip.wav!r}'}; "
                        f"run `voxtop dataset check {data.dataset} --no-cache`")
    return Path(data.dataset) / clip.wav


def audio_key(path: Path) -> str:
    """A short digest of what the wav at `path` is: its size, modification time and inode.

    A re-recorded, replaced or copied wav gets another key, so its features are computed again.
    """
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ClipError(f"{path}: {exc.strerror or exc}") from None
    return hashlib.sha1(f"{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}".encode()).hexdigest()[:12]


def usable_features(array: object, rows: int) -> bool:
    """Whether a cached feature file holds what was written: a finite float32 array `[rows, frames]`."""
    return (isinstance(array, np.ndarray) and array.dtype == np.float32 and array.ndim == 2
            and array.shape[0] == rows and array.shape[1] > 0 and bool(np.isfinite(array).all()))


class FeatureCache:
    """Mel features of a dataset's clips, computed once and read from disk afterwards."""

    def __init__(self, data: DataConfig):
        self.data = data
        self.folder = cache_folder(data)
        self._extractor: MelExtractor | None = None
        self._keys: dict[str, str] = {}  # clip id -> audio key, taken once per process
        self._checked: set[str] = set()  # clip ids whose cached file held up when read

    def path(self, clip: Clip) -> Path:
        """`<cache>/<id>.<audio key>.npy`; ClipError for an id that is not a plain name."""
        key = self._keys.get(clip.id)
        if key is None:
            key = self._keys[clip.id] = audio_key(wav_path(self.data, clip))
        return self.folder / f"{clip.id}.{key}.npy"

    def missing(self, clips: list[Clip]) -> list[Clip]:
        return [clip for clip in clips if not self.path(clip).is_file()]

    def build(self, clips: list[Clip], log: object = None) -> int:
        """Compute features that are not cached yet; returns how many were computed."""
        todo = self.missing(clips)
        if not todo:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        for done, clip in enumerate(todo, 1):
            self._compute(clip)
            if log is not None and (done % 200 == 0 or done == len(todo)):
                log(f"features: {done}/{len(todo)} clips computed")  # type: ignore[operator]
        return len(todo)

    def _compute(self, clip: Clip) -> np.ndarray:
        """Features of one clip from its wav, written to the cache (older files of the clip removed)."""
        extractor = self._extractor = self._extractor or MelExtractor(self.data)
        source = wav_path(self.data, clip)
        try:
            mel = extractor(extractor.trim(extractor.load_audio(source))).numpy().astype(np.float32)
        except Exception as exc:  # noqa: BLE001 — whatever the audio did, say which clip
            raise ClipError(f"clip {clip.id} ({source}): {type(exc).__name__}: {str(exc).strip()[:300]}; "
                            f"`voxtop dataset check {self.data.dataset}` reports such clips") from None
        if not usable_features(mel, self.data.n_mels):
            raise ClipError(f"clip {clip.id} ({source}): its features are not finite numbers; "
                            "is the audio damaged? (`voxtop dataset check` reports non-finite samples)")
        path = self.path(clip)
        atomic_write(path, lambda handle: np.save(handle, mel))
        self._checked.add(clip.id)
        self._remove_older(clip, path)
        return mel

    def _remove_older(self, clip: Clip, current: Path) -> None:
        """Delete the clip's features of an earlier recording: they can never match again."""
        pattern = re.compile(re.escape(clip.id) + r"\.[0-9a-f]{12}\.npy")
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return
        for entry in entries:
            if entry.name != current.name and pattern.fullmatch(entry.name):
                Path(entry.path).unlink(missing_ok=True)

    def load(self, clip: Clip) -> np.ndarray:
        """The clip's features; a cached file that does not hold up is computed again, not used."""
        path = self.path(clip)
        try:
            with open_regular(path) as handle:
                mel = np.load(handle, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            mel = None
        if mel is not None and clip.id in self._checked:
            return mel
        if not usable_features(mel, self.data.n_mels):
            return self._compute(clip)
        self._checked.add(clip.id)
        return mel

    def frames(self, clip: Clip) -> int:
        """Frame count from the .npy header alone (no data read); a damaged file is computed again."""
        path = self.path(clip)
        try:
            with open_regular(path) as handle:
                version = np.lib.format.read_magic(handle)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(handle)
            if len(shape) == 2 and shape[0] == self.data.n_mels and shape[1] > 0 and dtype == np.float32:
                return int(shape[1])
        except (OSError, ValueError, EOFError):
            pass
        return int(self._compute(clip).shape[1])
