"""Train/validation split, the per-epoch batch order, and collation into padded tensors.

The batch order of an epoch is a pure function of (seed, epoch), so a run resumed at
batch k of epoch e sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from trainer.dataset import Clip
from trainer.features import FeatureCache
from trainer.text import Language


def split_clips(clips: list[Clip], val_fraction: float, seed: int,
                fraction: float = 1.0) -> tuple[list[Clip], list[Clip]]:
    """(train, validation): a seeded shuffle, cut to `fraction`, then `val_fraction` held out."""
    ordered = sorted(clips, key=lambda c: c.id)
    random.Random(seed).shuffle(ordered)
    ordered = ordered[:max(1, math.ceil(len(ordered) * fraction))]
    n_val = round(len(ordered) * val_fraction) if val_fraction > 0 else 0
    if val_fraction > 0 and len(ordered) >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, len(ordered) - 1)
    return ordered[n_val:], ordered[:n_val]


def epoch_permutation(n_items: int, seed: int, epoch: int) -> list[int]:
    """The clip order of one epoch: a pure function of (seed, epoch)."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n_items, generator=generator).tolist()


def next_batch(order: list[int], offset: int, batch_size: int, rank: int = 0,
               world_size: int = 1, drop_tail: bool = False) -> tuple[list[int], int]:
    """(this rank's clips, clips consumed by all ranks) for the batch starting at `offset`.

    Positions are counted in clips, not batches, so the batch size may change mid-epoch
    (out-of-memory back-off) without skipping or repeating a clip. With several
    processes each rank takes its share of one global batch. `drop_tail` leaves out a last
    batch that is not full (CUDA graphs replay one batch shape), as NVIDIA's recipe does.
    """
    chunk = order[offset:offset + batch_size * world_size]
    if len(chunk) < (batch_size * world_size if drop_tail else world_size):
        return [], len(chunk)
    share = chunk[rank::world_size] if world_size > 1 else chunk
    return share, len(chunk)


def steps_for(n_clips: int, batch_size: int, world_size: int = 1, drop_tail: bool = False) -> int:
    """Steps needed to go through `n_clips` clips (a tail too short for every rank, or with
    `drop_tail` any tail short of a full batch, is dropped)."""
    full, tail = divmod(n_clips, batch_size * world_size)
    return full + (1 if tail >= world_size and not drop_tail else 0)


@dataclass
class Batch:
    tokens: Tensor        # [B, max_text] long, descending text length (torchaudio needs it)
    text_lengths: Tensor  # [B]
    mels: Tensor          # [B, n_mels, max_frames]
    mel_lengths: Tensor   # [B]
    gates: Tensor         # [B, max_frames / r] 1 from the decoder step holding the last real frame on

    def to(self, device: torch.device) -> Batch:
        nb = device.type == "cuda"
        return Batch(*(t.to(device, non_blocking=nb) for t in self.tensors()))

    def tensors(self) -> tuple[Tensor, ...]:
        return (self.tokens, self.text_lengths, self.mels, self.mel_lengths, self.gates)

    @property
    def size(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(clips, padded text length, padded mel frames)."""
        return int(self.tokens.shape[0]), int(self.tokens.shape[1]), int(self.mels.shape[2])

    def frames(self) -> int:
        return int(self.mel_lengths.sum())


class ClipSet:
    """Token ids and cached mels of a list of clips."""

    def __init__(self, clips: list[Clip], language: Language, cache: FeatureCache, frames_per_step: int = 1):
        self.clips = clips
        self.tokens = [language.to_ids(c.text) for c in clips]
        self.cache = cache
        self.frames_per_step = frames_per_step

    def __len__(self) -> int:
        return len(self.clips)

    def batch(self, indices: list[int], pad_to: tuple[int, int] | None = None) -> Batch:
        items = [(self.tokens[i], self.cache.load(self.clips[i])) for i in indices]
        return collate(items, pad_to, self.frames_per_step)

    def max_shape(self) -> tuple[int, int]:
        """(longest text in tokens, longest mel in frames) over the set: one padded shape for all."""
        frames = max((self.cache.frames(c) for c in self.clips), default=1)
        return (max((len(t) for t in self.tokens), default=1), -(-frames // self.frames_per_step) * self.frames_per_step)

    def frames_per_char(self) -> float:
        """The speaking rate of the set: median mel frames per text token (after silence trimming)."""
        rates = sorted(self.cache.frames(c) / max(1, len(t)) for c, t in zip(self.clips, self.tokens))
        return float(rates[len(rates) // 2]) if rates else 0.0


def collate(items: list[tuple[list[int], np.ndarray]], pad_to: tuple[int, int] | None = None,
            frames_per_step: int = 1) -> Batch:
    """A batch sorted by text length, padded to its longest text and mel (or to `pad_to`).

    Mel frames are padded to a multiple of `frames_per_step` (the decoder predicts that many at
    once); the stop target is per decoder step: 1 from the step that holds the last real frame.
    """
    r = frames_per_step
    items = sorted(items, key=lambda item: len(item[0]), reverse=True)
    n_mels = items[0][1].shape[0]
    max_text = len(items[0][0])
    max_frames = max(mel.shape[1] for _, mel in items)
    if pad_to is not None:
        max_text, max_frames = max(max_text, pad_to[0]), max(max_frames, pad_to[1])
    max_frames = -(-max_frames // r) * r
    tokens = torch.zeros(len(items), max_text, dtype=torch.long)
    mels = torch.zeros(len(items), n_mels, max_frames)
    gates = torch.zeros(len(items), max_frames // r)
    text_lengths = torch.tensor([len(ids) for ids, _ in items], dtype=torch.long)
    mel_lengths = torch.tensor([mel.shape[1] for _, mel in items], dtype=torch.long)
    for row, (ids, mel) in enumerate(items):
        tokens[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        mels[row, :, :mel.shape[1]] = torch.from_numpy(mel)
        gates[row, (mel.shape[1] - 1) // r:] = 1.0
    return Batch(tokens, text_lengths, mels, mel_lengths, gates)
