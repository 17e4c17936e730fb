"""DC-TTS's two networks as the paper draws them (Tachibana et al. 2017, section 4 and figure 1).

Text2Mel: TextEnc (non-causal) → keys K and values V; AudioEnc (causal) over the coarse mel so far
→ queries Q; attention A = softmax over characters of KᵀQ/√d; R = V·A; AudioDec (causal) over
[R, Q] → the next coarse mel frames (every 4th frame of the mel, in [0, 1]). SSRN: coarse mel →
full-rate linear magnitude, upsampled ×4 with two transposed convolutions. Every layer is a 1-D
convolution, most of them highway convolutions with dilations 1, 3, 9, 27, so a training step
runs all frames at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: The paper's reduction factor: Text2Mel predicts every 4th mel frame, SSRN restores the rest.
REDUCTION = 4


@dataclass(frozen=True)
class Sizes:
    """Widths of a preset: character embedding e, Text2Mel hidden d, SSRN hidden c."""

    embedding: int
    hidden: int
    ssrn: int


#: `full` = the paper's sizes (e = 128, d = 256, c = 512); `tiny` trains in minutes on two CPU cores.
PRESETS = {"full": Sizes(embedding=128, hidden=256, ssrn=512), "tiny": Sizes(embedding=64, hidden=96, ssrn=96)}


class Conv(nn.Conv1d):
    """A 1-D convolution keeping the length: padded on both sides, or causally (left only)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, dilation: int = 1,
                 causal: bool = False):
        super().__init__(in_channels, out_channels, kernel, dilation=dilation)
        self.pad = (kernel - 1) * dilation
        self.causal = causal

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        left = self.pad if self.causal else self.pad // 2
        return super().forward(F.pad(x, (left, self.pad - left)))


class HighwayConv(nn.Module):
    """H = C(X) split in halves H1, H2; out = σ(H1)·H2 + (1 − σ(H1))·X (the paper's HC)."""

    def __init__(self, channels: int, kernel: int, dilation: int, causal: bool, dropout: float):
        super().__init__()
        self.conv = Conv(channels, 2 * channels, kernel, dilation, causal)
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.conv(F.dropout(x, self.dropout, self.training)).chunk(2, dim=1)
        gate = torch.sigmoid(gate)
        return gate * value + (1 - gate) * x


def _highways(channels: int, kernel: int, dilations: list[int], causal: bool, dropout: float) -> list[nn.Module]:
    return [HighwayConv(channels, kernel, d, causal, dropout) for d in dilations]


class TextEnc(nn.Module):
    """Characters → (K, V), each [B, d, N]."""

    def __init__(self, n_symbols: int, e: int, d: int, dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(n_symbols, e, padding_idx=0)
        self.layers = nn.Sequential(
            Conv(e, 2 * d), nn.ReLU(), Conv(2 * d, 2 * d),
            *_highways(2 * d, 3, [1, 3, 9, 27] * 2, False, dropout),
            *_highways(2 * d, 3, [1, 1], False, dropout),
            *_highways(2 * d, 1, [1, 1], False, dropout))

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        keys, values = self.layers(self.embedding(tokens).transpose(1, 2)).chunk(2, dim=1)
        return keys, values


class AudioEnc(nn.Module):
    """Coarse mel frames so far [B, F, T] → queries Q [B, d, T] (causal: frame t sees frames ≤ t)."""

    def __init__(self, n_mels: int, d: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            Conv(n_mels, d, causal=True), nn.ReLU(), Conv(d, d, causal=True), nn.ReLU(), Conv(d, d, causal=True),
            *_highways(d, 3, [1, 3, 9, 27] * 2, True, dropout),
            *_highways(d, 3, [3, 3], True, dropout))

    def forward(self, mel: Tensor) -> Tensor:
        return self.layers(mel)


class AudioDec(nn.Module):
    """[R, Q] [B, 2d, T] → logits of the next coarse mel frames [B, F, T] (causal)."""

    def __init__(self, n_mels: int, d: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            Conv(2 * d, d, causal=True),
            *_highways(d, 3, [1, 3, 9, 27, 1, 1], True, dropout),
            Conv(d, d, causal=True), nn.ReLU(), Conv(d, d, causal=True), nn.ReLU(),
            Conv(d, d, causal=True), nn.ReLU(), Conv(d, n_mels, causal=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class Text2Mel(nn.Module):
    """Text and the coarse mel shifted by one frame → next-frame logits and the attention [B, T, N]."""

    def __init__(self, n_symbols: int, n_mels: int, sizes: Sizes, dropout: float):
        super().__init__()
        self.hidden = sizes.hidden
        self.text_enc = TextEnc(n_symbols, sizes.embedding, sizes.hidden, dropout)
        self.audio_enc = AudioEnc(n_mels, sizes.hidden, dropout)
        self.audio_dec = AudioDec(n_mels, sizes.hidden, dropout)

    def attend(self, keys: Tensor, queries: Tensor, text_lengths: Tensor) -> Tensor:
        """Softmax over the real characters of KᵀQ/√d: [B, T, N]."""
        scores = torch.einsum("bdn,bdt->btn", keys, queries) / self.hidden ** 0.5
        padding = torch.arange(keys.shape[2], device=keys.device)[None, None, :] >= text_lengths[:, None, None]
        return torch.softmax(scores.masked_fill(padding, -1e4), dim=2)

    def decode(self, values: Tensor, queries: Tensor, attention: Tensor) -> Tensor:
        """AudioDec over [R, Q], R = V·A."""
        context = torch.einsum("bdn,btn->bdt", values, attention)
        return self.audio_dec(torch.cat((context, queries), dim=1))

    def forward(self, tokens: Tensor, text_lengths: Tensor, mel_in: Tensor) -> tuple[Tensor, Tensor]:
        keys, values = self.text_enc(tokens)
        queries = self.audio_enc(mel_in)
        attention = self.attend(keys, queries, text_lengths)
        return self.decode(values, queries, attention), attention


class SSRN(nn.Module):
    """Coarse mel [B, F, T] (values in [0, 1]) → logits of the linear magnitude [B, F', 4T]."""

    def __init__(self, n_mels: int, n_linear: int, c: int, dropout: float):
        super().__init__()

        def up() -> list[nn.Module]:
            return [nn.ConvTranspose1d(c, c, 2, stride=2), *_highways(c, 3, [1, 3], False, dropout)]

        self.layers = nn.Sequential(
            Conv(n_mels, c), *_highways(c, 3, [1, 3, 1, 3], False, dropout), *up(), *up(),
            Conv(c, 2 * c), *_highways(2 * c, 3, [1, 1], False, dropout),
            Conv(2 * c, n_linear), Conv(n_linear, n_linear), nn.ReLU(), Conv(n_linear, n_linear), nn.ReLU(),
            Conv(n_linear, n_linear))

    def forward(self, coarse: Tensor) -> Tensor:
        return self.layers(coarse)
