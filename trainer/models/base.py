"""The one interface every network of `trainer/models/` provides to the loop, synthesis, health and export.

A *model* (`[model] name`) is one folder under `trainer/models/`; it has one network (Tacotron2) or
several that are trained as linked runs (DC-TTS: Text2Mel and SSRN, `[model] network`). The loop
knows nothing of any architecture: it asks the network for the clips it trains on, the forward pass,
the losses and their logged parts, and the rendering of a sentence.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from trainer.config import Config


@dataclass
class StepLosses:
    """The losses of one batch as device tensors (read back once per log interval).

    `total` is what is minimised; `parts` holds one scalar per name of `Network.terms`, in that order
    (detached); `val` is the validation figure users compare across checkpoints (no guide term).
    """

    total: Tensor
    parts: list[Tensor]
    val: Tensor


@dataclass
class Rendering:
    """One sentence rendered free-running: what the alignment picture, the samples and health need.

    `alignment` is `[decoder_steps, text_len]` (empty for a network without attention), `mel` the
    log mel `[n_mels, frames]` as `trainer.features` makes it, `audio` float samples, `frames` the
    length in mel frames, `stop` why it ended ("gate", "attention", "limit").
    """

    alignment: Any
    mel: Any
    audio: Any
    frames: int
    stop: str
    sample_rate: int


class Network(ABC):
    """One trainable network: what the training loop, synthesis, health and export need of it."""

    #: The registry name (`tacotron2`, `text2mel`, `ssrn`).
    name: str = ""
    #: The `format` written by `voxtop export`.
    export_format: str = ""
    #: Record keys of the logged parts of `losses`, in order (`loss_mel`, `attention_score`, ...).
    terms: tuple[str, ...] = ()
    #: The subset of `terms` a validation record carries.
    val_terms: tuple[str, ...] = ()
    #: Short names for the progress line (`loss_mel` -> `mel`); keys not listed are left out.
    log_labels: dict[str, str] = {}
    #: Whether it reads text: it then renders the alignment sentence and the held-out sentences.
    reads_text: bool = True
    #: Adam's settings besides the learning rate and weight decay (empty: torch's defaults).
    adam: dict[str, Any] = {}

    def __init__(self, config: Config):
        self.config = config

    @abstractmethod
    def build(self, n_symbols: int) -> torch.nn.Module:
        """A fresh model of the config's preset for an alphabet of `n_symbols` (id 0 is padding)."""

    @abstractmethod
    def clip_set(self, clips: list[Any], language: Any, cache: Any, training: bool = True) -> Any:
        """The clips as this network trains on them: an object with `batch(indices, pad_to)`,
        `__len__`, `max_shape()` and `frames_per_char()` (`trainer.data.ClipSet` for Tacotron2).

        Batches have `to(device)`, `tensors()`, `size`, `shape`, `frames()` and `mel_lengths`. Making a
        batch may draw from torch's global generator (random crops): the loop's RNG state is saved in
        every checkpoint, so a resume draws the same.
        """

    @abstractmethod
    def forward(self, model: torch.nn.Module, batch: Any, graph_safe: bool = False) -> Any:
        """Teacher-forced outputs for a batch; with `graph_safe`, without host synchronisation."""

    @abstractmethod
    def losses(self, outputs: Any, batch: Any) -> StepLosses:
        """The loss to minimise, the parts named by `terms`, and the validation figure."""

    @abstractmethod
    def render(self, model: torch.nn.Module, token_ids: list[int], device: torch.device, seed: int = 0,
               end_at: int | None = None, companion: Any = None) -> Rendering:
        """Free-running rendering of one sentence (or, without text, of `companion`'s input).

        Leaves the training RNG stream untouched. `companion` is what the network needs besides
        itself to make audio (DC-TTS Text2Mel: the SSRN model of its pair, or None).
        """

    def companion(self, run_path: Path, device: torch.device, log: Any = print) -> Any:
        """Whatever `render` needs from outside this run (None: nothing), loaded anew on each call."""
        return None

    def warm_start(self, model: torch.nn.Module, path: str | Path, symbols: list[str]) -> list[str]:
        """Load matching weights from a voxtop checkpoint or export; notes of what was skipped."""
        from trainer.models.common import load_matching

        return load_matching(model, path)

    def graph_forward_reason(self) -> str | None:
        """None when the training step can be captured as a CUDA graph, else why not."""
        return "this model's step is not captured as a CUDA graph"

    @abstractmethod
    def export_fields(self, n_symbols: int) -> dict[str, Any]:
        """What an export holds besides the weights to rebuild the model (the constructor's arguments)."""

    def checkpoint_bytes(self) -> int:
        """About how large one checkpoint of the config's preset is: weights and Adam's two moments."""
        model = self.build(40)
        return 12 * sum(p.numel() for p in model.parameters()) + 64 * 1024
