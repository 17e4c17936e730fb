"""Text2Mel at inference: one coarse frame at a time with the paper's forcibly incremental attention.

Tachibana et al. (section 4.2): the attended character n_t may not move back, nor jump ahead more
than a few characters; when the network's own attention does, it is replaced by a one-hot on
n_{t-1} + 1. voxtop allows 0 to `MAX_JUMP` characters forward and stops at the end of the text: once
the attention has rested on the last spoken character (or reached the last token) for a few frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from trainer.models.dctts.modules import Conv, HighwayConv

#: The most characters the attention may move forward in one coarse frame.
MAX_JUMP = 3


@dataclass
class Decoded:
    coarse: np.ndarray     # [F, Tc] in [0, 1]
    alignment: np.ndarray  # [Tc, N], the attention used (after forcing)
    stop: str              # "attention" (end of text) or "limit"
    forced: int            # frames whose attention was forced


def force_incremental(row: torch.Tensor, previous: int | None) -> tuple[torch.Tensor, bool]:
    """The attention row [N] kept if its peak lies in [previous, previous + MAX_JUMP], else a one-hot
    on previous + 1 (on 0 for the first frame unless its peak is within the first MAX_JUMP + 1)."""
    n = row.shape[0]
    peak = int(row.argmax())
    low, high = (0, MAX_JUMP) if previous is None else (previous, previous + MAX_JUMP)
    if low <= peak <= high:
        return row, False
    forced = torch.zeros_like(row)
    forced[0 if previous is None else min(previous + 1, n - 1)] = 1.0
    return forced, True


class CausalStream:
    """A stack of causal layers (`Conv`, `HighwayConv`, activations) run one frame at a time.

    Each convolution keeps the inputs its kernel still needs ((kernel − 1) × dilation frames), so a
    frame costs the same however long the rendering already is, and equals the whole-sequence
    forward at that frame (the zeros it starts from are the causal padding).
    """

    def __init__(self, layers: torch.nn.Module):
        self.layers = list(layers)
        self.past: dict[int, torch.Tensor] = {}

    def _conv(self, index: int, conv: Conv, x: torch.Tensor) -> torch.Tensor:
        if conv.pad == 0:
            return F.conv1d(x, conv.weight, conv.bias)
        past = self.past.get(index)
        if past is None:
            past = x.new_zeros(x.shape[0], x.shape[1], conv.pad)
        window = torch.cat((past, x), dim=2)
        self.past[index] = window[:, :, 1:]
        return F.conv1d(window, conv.weight, conv.bias, dilation=conv.dilation)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One frame [B, C, 1] in, one frame out (eval mode: no dropout)."""
        for index, layer in enumerate(self.layers):
            if isinstance(layer, HighwayConv):
                gate, value = self._conv(index, layer.conv, x).chunk(2, dim=1)
                gate = torch.sigmoid(gate)
                x = gate * value + (1 - gate) * x
            elif isinstance(layer, Conv):
                x = self._conv(index, layer, x)
            else:
                x = layer(x)
        return x


def incremental_decode(model: torch.nn.Module, token_ids: list[int], device: torch.device, max_steps: int,
                       end_at: int, rest_steps: int) -> Decoded:
    """Free-running Text2Mel, one coarse frame at a time (call under `torch.no_grad()`, model in eval mode)."""
    tokens = torch.tensor([token_ids], dtype=torch.long, device=device)
    lengths = torch.tensor([len(token_ids)], device=device)
    keys, values = model.text_enc(tokens)
    n_mels = model.audio_dec.layers[-1].out_channels
    audio_enc, audio_dec = CausalStream(model.audio_enc.layers), CausalStream(model.audio_dec.layers)
    frame = torch.zeros(1, n_mels, 1, device=device)  # the go frame, then each predicted frame
    frames: list[torch.Tensor] = []
    rows: list[torch.Tensor] = []
    previous: int | None = None
    stop, forced_count, resting = "limit", 0, 0
    last = len(token_ids) - 1
    for _ in range(max_steps):
        query = audio_enc.step(frame)
        row = model.attend(keys, query, lengths)[0, 0]
        row, forced = force_incremental(row, previous)
        forced_count += forced
        previous = int(row.argmax())
        rows.append(row)
        context = torch.einsum("bdn,n->bd", values, row)[:, :, None]
        frame = torch.sigmoid(audio_dec.step(torch.cat((context, query), dim=1)))
        frames.append(frame)
        resting = resting + 1 if previous >= end_at else 0
        if resting >= rest_steps or (previous >= last > end_at):
            stop = "attention"
            break
    alignment = torch.stack(rows).float().cpu().numpy()
    return Decoded(torch.cat(frames, dim=2)[0].float().cpu().numpy(), alignment, stop, forced_count)
