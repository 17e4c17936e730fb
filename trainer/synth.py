"""Free-running synthesis of the alignment sentence at each checkpoint: alignment, mel, audio."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import soundfile
import torch
import torchaudio

from trainer.config import DataConfig
from trainer.features import LOG_FLOOR


@dataclass
class Synthesis:
    alignment: np.ndarray  # [decoder_steps, text_len]
    mel: np.ndarray        # [n_mels, frames], log-compressed
    reached_limit: bool    # the decoder never predicted a stop within max_decoder_steps


def synthesise(model: torch.nn.Module, token_ids: list[int], device: torch.device,
               max_steps: int) -> Synthesis:
    """Run the model without teacher forcing; leaves the training RNG stream untouched."""
    was_training = model.training
    model.eval()
    tokens = torch.tensor([token_ids], dtype=torch.long, device=device)
    lengths = torch.tensor([len(token_ids)], dtype=torch.long, device=device)
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Reached max decoder steps" is reported by us
            mel, mel_lengths, alignments = model.infer(tokens, lengths)
    finally:
        model.train(was_training)
    frames = int(mel_lengths[0])
    return Synthesis(alignments[0, :frames].float().cpu().numpy(), mel[0, :, :frames].float().cpu().numpy(),
                     frames >= max_steps)


class GriffinLim:
    """Log-mel → waveform, good enough to hear whether a checkpoint speaks."""

    def __init__(self, data: DataConfig, n_iter: int = 32):
        self.sample_rate = data.sample_rate
        self.inverse_mel = torchaudio.transforms.InverseMelScale(
            n_stft=data.n_fft // 2 + 1, n_mels=data.n_mels, sample_rate=data.sample_rate,
            f_min=data.fmin, f_max=data.fmax, norm="slaney", mel_scale="slaney")
        self.griffin_lim = torchaudio.transforms.GriffinLim(
            n_fft=data.n_fft, n_iter=n_iter, win_length=data.win, hop_length=data.hop, power=1.0)

    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        min_frames = self.griffin_lim.n_fft // self.griffin_lim.hop_length
        if log_mel.shape[1] < min_frames:  # an untrained decoder may stop after a frame: pad with silence
            pad = np.full((log_mel.shape[0], min_frames - log_mel.shape[1]), np.log(LOG_FLOOR), np.float32)
            log_mel = np.concatenate([log_mel, pad], axis=1)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            magnitude = torch.exp(torch.from_numpy(log_mel)).clamp(min=LOG_FLOOR)
            linear = self.inverse_mel(magnitude).clamp(min=0)
            audio = self.griffin_lim(linear)
        peak = float(audio.abs().max()) or 1.0
        return (audio / peak * 0.9).numpy()

    def write(self, log_mel: np.ndarray, handle: object) -> None:
        soundfile.write(handle, self(log_mel), self.sample_rate, format="WAV", subtype="PCM_16")
