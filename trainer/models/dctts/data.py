"""Batches of DC-TTS's two networks: Text2Mel (text → coarse mel) and SSRN (coarse mel → linear)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from trainer.data import ClipSet
from trainer.models.dctts.features import MEL_REF_DB, LinearCache, coarse, normalise_log
from trainer.models.dctts.modules import REDUCTION

#: SSRN trains on windows of this many coarse frames (its receptive field is far shorter), so a step
#: costs the same for every clip; validation uses whole clips.
SSRN_CROP = 32


@dataclass
class _Batch:
    """Tensors of one batch; subclasses list them as fields, `mel_lengths` counts real mel frames."""

    def to(self, device: torch.device) -> _Batch:
        nb = device.type == "cuda"
        return type(self)(*(t.to(device, non_blocking=nb) for t in self.tensors()))

    def tensors(self) -> tuple[Tensor, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))

    @property
    def size(self) -> int:
        return int(self.mel_lengths.shape[0])  # type: ignore[attr-defined]

    def frames(self) -> int:
        return int(self.mel_lengths.sum())  # type: ignore[attr-defined]


@dataclass
class Text2MelBatch(_Batch):
    tokens: Tensor          # [B, N] long, 0 = padding
    text_lengths: Tensor    # [B]
    coarse: Tensor          # [B, F, Tc] targets S in [0, 1]
    coarse_lengths: Tensor  # [B] real coarse frames
    mel_lengths: Tensor     # [B] real mel frames (for frames/s)

    @property
    def shape(self) -> tuple[int, int, int]:
        return int(self.tokens.shape[0]), int(self.tokens.shape[1]), int(self.coarse.shape[2]) * REDUCTION


@dataclass
class SSRNBatch(_Batch):
    coarse: Tensor          # [B, F, Tc] input in [0, 1]
    linear: Tensor          # [B, F', Tc * 4] targets in [0, 1]
    coarse_lengths: Tensor  # [B]
    mel_lengths: Tensor     # [B] real linear frames

    @property
    def shape(self) -> tuple[int, int, int]:
        return int(self.coarse.shape[0]), 0, int(self.linear.shape[2])


class Text2MelClips(ClipSet):
    """Token ids and normalised coarse mels (every 4th frame of the cached log mel)."""

    def __init__(self, clips: list, language: object, cache: object):
        super().__init__(clips, language, cache, REDUCTION)  # type: ignore[arg-type]

    def batch(self, indices: list[int], pad_to: tuple[int, int] | None = None) -> Text2MelBatch:
        items = [(self.tokens[i], self.cache.load(self.clips[i])) for i in indices]
        max_text = max(len(ids) for ids, _ in items)
        max_coarse = max(-(-mel.shape[1] // REDUCTION) for _, mel in items)
        if pad_to is not None:
            max_text, max_coarse = max(max_text, pad_to[0]), max(max_coarse, -(-pad_to[1] // REDUCTION))
        n_mels = items[0][1].shape[0]
        tokens = torch.zeros(len(items), max_text, dtype=torch.long)
        targets = torch.zeros(len(items), n_mels, max_coarse)
        for row, (ids, mel) in enumerate(items):
            tokens[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            values = torch.from_numpy(normalise_log(coarse(mel, REDUCTION), MEL_REF_DB))
            targets[row, :, :values.shape[1]] = values
        return Text2MelBatch(tokens, torch.tensor([len(ids) for ids, _ in items]), targets,
                             torch.tensor([-(-mel.shape[1] // REDUCTION) for _, mel in items]),
                             torch.tensor([mel.shape[1] for _, mel in items]))


class SSRNClips(ClipSet):
    """Normalised coarse mels and linear magnitudes; training batches are random windows of them."""

    def __init__(self, clips: list, language: object, cache: object, linear: LinearCache, crop: int | None):
        super().__init__(clips, language, cache, REDUCTION)  # type: ignore[arg-type]
        self.linear, self.crop = linear, crop

    def batch(self, indices: list[int], pad_to: tuple[int, int] | None = None) -> SSRNBatch:
        pairs = []
        for i in indices:
            mel = self.cache.load(self.clips[i])
            pairs.append((normalise_log(coarse(mel, REDUCTION), MEL_REF_DB), self.linear.load(self.clips[i])))
        if self.crop is not None:  # drawn from torch's generator: a resume restores it and draws the same
            starts = [int(torch.randint(0, max(1, c.shape[1] - self.crop + 1), ())) for c, _ in pairs]
            pairs = [(c[:, s:s + self.crop], lin[:, s * REDUCTION:(s + self.crop) * REDUCTION])
                     for (c, lin), s in zip(pairs, starts)]
        max_coarse = max(c.shape[1] for c, _ in pairs)
        n_mels, n_linear = pairs[0][0].shape[0], pairs[0][1].shape[0]
        coarse_in = torch.zeros(len(pairs), n_mels, max_coarse)
        linear = torch.zeros(len(pairs), n_linear, max_coarse * REDUCTION)
        for row, (c, lin) in enumerate(pairs):
            coarse_in[row, :, :c.shape[1]] = torch.from_numpy(c)
            linear[row, :, :lin.shape[1]] = torch.from_numpy(lin)
        return SSRNBatch(coarse_in, linear, torch.tensor([c.shape[1] for c, _ in pairs]),
                         torch.tensor([lin.shape[1] for _, lin in pairs]))
