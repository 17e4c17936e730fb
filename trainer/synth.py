"""Free-running synthesis of the alignment sentence at each checkpoint: alignment, mel, audio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    reached_limit: bool    # the decoder never stopped within max_decoder_steps
    stop: str = "gate"     # why it ended: "gate" (stop token), "attention" (rested on the end), "limit"
    frames_per_step: int = 1


def synthesise(model: torch.nn.Module, token_ids: list[int], device: torch.device,
               max_steps: int, stop_after_end_frames: int = 0, seed: int = 0,
               end_at: int | None = None) -> Synthesis:
    """Run the model without teacher forcing; leaves the training RNG stream untouched.

    torchaudio's `Tacotron2.infer` stops only on the stop token. This loop runs the same decoder
    step by step and also stops once the attention peak has rested on the end of the text (from the
    token `end_at` on: the last letter, by default the last token) for `stop_after_end_frames` frames, so an aligned model whose stop token is still weak ends
    instead of babbling to the limit. `max_steps` counts mel frames. The prenet keeps its dropout
    at inference (as Tacotron2 does); `seed` makes a rendering repeatable.
    """
    was_training = model.training
    model.eval()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            end = len(token_ids) - 1 if end_at is None else end_at
            return _free_run(model, token_ids, device, max_steps, stop_after_end_frames, end)
    finally:
        model.train(was_training)


def _free_run(model: Any, token_ids: list[int], device: torch.device, max_frames: int,
              stop_after_end_frames: int, end_at: int) -> Synthesis:
    decoder = model.decoder
    r = int(decoder.n_frames_per_step)
    tokens = torch.tensor([token_ids], dtype=torch.long, device=device)
    lengths = torch.tensor([len(token_ids)], dtype=torch.long, device=device)
    memory = model.encoder(model.embedding(tokens).transpose(1, 2), lengths)
    mask = torch.zeros(1, memory.shape[1], dtype=torch.bool, device=device)  # one sentence: no padding
    (att_h, att_c, dec_h, dec_c, weights, weights_cum, context,
     processed) = decoder._initialize_decoder_states(memory)
    decoder_input = decoder._get_go_frame(memory)
    rest_steps = -(-stop_after_end_frames // r) if stop_after_end_frames else 0
    max_decoder_steps = max(1, -(-max_frames // r))
    mels, alignments = [], []
    stop, resting = "limit", 0
    for _ in range(max_decoder_steps):
        (mel, gate, att_h, att_c, dec_h, dec_c, weights, weights_cum, context) = decoder.decode(
            decoder.prenet(decoder_input), att_h, att_c, dec_h, dec_c, weights, weights_cum, context,
            memory, processed, mask)
        mels.append(mel)
        alignments.append(weights)
        if float(torch.sigmoid(gate.float()).flatten()[0]) > decoder.gate_threshold:
            stop = "gate"
            break
        resting = resting + 1 if int(weights[0].argmax()) >= end_at else 0
        if rest_steps and resting >= rest_steps:
            stop = "attention"
            break
        decoder_input = mel
    mel = torch.stack(mels, dim=1).view(1, -1, decoder.n_mels).transpose(1, 2)  # [1, n_mels, steps * r]
    mel = mel + model.postnet(mel)
    alignment = torch.cat(alignments, dim=0)  # [steps, text]
    return Synthesis(alignment.float().cpu().numpy(), mel[0].float().cpu().numpy(), stop == "limit", stop, r)


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
