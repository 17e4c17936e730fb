"""torchaudio's Tacotron2: size presets, masked losses, guided attention, warm start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchaudio.models import Tacotron2
from torchaudio.models.tacotron2 import _Decoder

from trainer.config import Config
from trainer.models.common import (DIAGONAL_BAND, attention_score, diagonality,  # noqa: F401 (re-exported)
                                  guided_attention_weights, lengths_mask)

PRESETS: dict[str, dict[str, int]] = {
    # The published sizes (Shen et al. 2018; NVIDIA's recipe), as torchaudio's defaults.
    "full": dict(symbol_embedding_dim=512, encoder_embedding_dim=512, encoder_n_convolution=3,
                 encoder_kernel_size=5, decoder_rnn_dim=1024, attention_rnn_dim=1024,
                 attention_hidden_dim=128, attention_location_n_filter=32,
                 attention_location_kernel_size=31, prenet_dim=256, postnet_n_convolution=5,
                 postnet_kernel_size=5, postnet_embedding_dim=512),
    # Small enough to train a few hundred steps on two CPU cores in minutes.
    "tiny": dict(symbol_embedding_dim=64, encoder_embedding_dim=64, encoder_n_convolution=2,
                 encoder_kernel_size=5, decoder_rnn_dim=192, attention_rnn_dim=192,
                 attention_hidden_dim=64, attention_location_n_filter=8,
                 attention_location_kernel_size=15, prenet_dim=64, postnet_n_convolution=3,
                 postnet_kernel_size=5, postnet_embedding_dim=64),
}

# NVIDIA's Tacotron2 text symbols (tacotron2/text/symbols.py), to carry embedding rows over
# to our alphabets; the 84 ARPAbet symbols that follow have no counterpart here.
NVIDIA_SYMBOLS = ["_", "-", *"!'(),.:;? ", *"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"]
NVIDIA_N_SYMBOLS = 148


def model_kwargs(config: Config, n_symbols: int) -> dict[str, Any]:
    """The arguments of `torchaudio.models.Tacotron2` for a config (exports record them too)."""
    return {"mask_padding": False, "n_mels": config.data.n_mels, "n_symbol": n_symbols,
            "n_frames_per_step": config.model.frames_per_step,
            "decoder_max_step": config.train.max_decoder_steps, "decoder_dropout": config.model.dropout,
            "attention_dropout": config.model.dropout, **PRESETS[config.model.preset]}


class _GroupedDecoder(_Decoder):
    """torchaudio's decoder, able to take r > 1 frames per step in teacher forcing.

    torchaudio groups the target frames with `view` on a transposed tensor, which fails for
    r > 1; `reshape` does the same grouping. Nothing else differs (same weights, same names).
    """

    def _parse_decoder_inputs(self, decoder_inputs: Tensor) -> Tensor:
        grouped = decoder_inputs.transpose(1, 2).reshape(decoder_inputs.size(0), -1,
                                                         self.n_mels * self.n_frames_per_step)
        return grouped.transpose(0, 1)


def build_model(config: Config, n_symbols: int) -> Tacotron2:
    """A Tacotron2 of the config's preset; padding is masked in the loss, not in the model."""
    model = Tacotron2(**model_kwargs(config, n_symbols))
    model.decoder.__class__ = _GroupedDecoder
    return model


@dataclass
class Losses:
    """The terms of one batch, as device tensors (read back once per log interval)."""

    total: Tensor
    mel: Tensor
    gate: Tensor
    guided: Tensor
    attention_score: Tensor
    diagonality: Tensor


def decoder_steps(mel_lengths: Tensor, frames_per_step: int) -> Tensor:
    """Decoder steps that hold real frames: the frame count divided by r, rounded up."""
    return torch.div(mel_lengths + frames_per_step - 1, frames_per_step, rounding_mode="floor")


def compute_losses(outputs: tuple[Tensor, Tensor, Tensor, Tensor], mels: Tensor, gates: Tensor,
                   text_lengths: Tensor, mel_lengths: Tensor, guided_weight: float,
                   guided_sigma: float, gate_pos_weight: float = 1.0, frames_per_step: int = 1) -> Losses:
    """Masked mel MSE (pre- and post-net), weighted masked gate BCE, guided attention, alignment figures.

    The gate (stop token) has one positive step per clip among a hundred or more: unweighted, the
    best it can do is predict a small probability everywhere and never stop. `gate_pos_weight`
    weights that step up. Gates, attention and the guide are per decoder step (r frames each).
    """
    mel_out, mel_post, gate_out, alignments = outputs
    frame_mask = lengths_mask(mel_lengths, mels.shape[2])  # [B, T]
    frames = frame_mask.sum().clamp(min=1)
    mel_mask = frame_mask[:, None, :].float()
    n_mels = mels.shape[1]
    mel_loss = (((mel_out.float() - mels) ** 2 * mel_mask).sum()
                + ((mel_post.float() - mels) ** 2 * mel_mask).sum()) / (frames * n_mels)
    step_lengths = decoder_steps(mel_lengths, frames_per_step)
    step_mask = lengths_mask(step_lengths, gates.shape[1])  # [B, T / r]
    steps = step_mask.sum().clamp(min=1)
    pos_weight = torch.full((), gate_pos_weight, device=gates.device)
    gate_loss = (F.binary_cross_entropy_with_logits(gate_out.float(), gates, reduction="none",
                                                    pos_weight=pos_weight) * step_mask).sum() / steps
    align = alignments.float()
    if guided_weight > 0:
        weights = guided_attention_weights(text_lengths, step_lengths, align.shape[1], align.shape[2],
                                           guided_sigma)
        guided = (align * weights).sum() / steps
    else:
        guided = torch.zeros((), device=mels.device)
    total = mel_loss + gate_loss + guided_weight * guided
    detached = align.detach()
    return Losses(total, mel_loss.detach(), gate_loss.detach(), guided.detach(),
                  attention_score(detached, step_lengths), diagonality(detached, text_lengths, step_lengths))


# --- warm start -------------------------------------------------------------------


class PretrainedError(ValueError):
    """A pretrained file that cannot be used; the message says why."""


def nvidia_to_torchaudio(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """NVIDIA's key names → torchaudio's: drop `module.` and the `.conv`/`.linear_layer` wrappers."""
    renamed = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        key = key.replace(".linear_layer.", ".").replace(".conv.", ".")
        renamed[key] = value
    return renamed


def read_pretrained(path: str | Path) -> tuple[dict[str, Tensor], list[str] | None]:
    """(torchaudio-named state dict, its symbols if known) from a voxtop or NVIDIA file.

    Loaded with `weights_only=True`: a file from the internet cannot run code here.
    """
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise PretrainedError(f"pretrained model {path} does not exist (train.pretrained)") from None
    except Exception as exc:  # pickle.UnpicklingError and friends: refuse anything but weights
        raise PretrainedError(f"refusing to load {path}: it is not a plain weights file "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    if not isinstance(payload, dict):
        raise PretrainedError(f"{path} holds a {type(payload).__name__}, not a state dict")
    if isinstance(payload.get("model"), dict):  # a voxtop checkpoint or export
        return dict(payload["model"]), payload.get("symbols")
    state = payload.get("state_dict", payload)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise PretrainedError(f"{path} has no model weights (expected 'model' or 'state_dict')")
    state = nvidia_to_torchaudio(state)
    embedding = state.get("embedding.weight")
    nvidia = embedding is not None and embedding.shape[0] == NVIDIA_N_SYMBOLS
    return state, NVIDIA_SYMBOLS if nvidia else None


def warm_start(model: Tacotron2, path: str | Path, symbols: list[str]) -> list[str]:
    """Load matching weights from `path`; returns human-readable notes of what was skipped.

    Layers whose shapes differ are skipped; the embedding rows of symbols both alphabets
    share are copied, so a new language keeps what it can.
    """
    source, source_symbols = read_pretrained(path)
    target = model.state_dict()
    notes: list[str] = []
    loaded = 0
    for key, value in source.items():
        if key not in target:
            notes.append(f"skipped {key}: not in this model")
            continue
        other_alphabet = source_symbols is not None and source_symbols != symbols
        if key == "embedding.weight" and (value.shape != target[key].shape or other_alphabet):
            copied = _copy_embedding_rows(target[key], value, source_symbols, symbols)
            notes.append(f"embedding: copied {copied} of {len(symbols)} symbol rows shared with the "
                         "pretrained alphabet")
            continue
        if value.shape != target[key].shape:
            notes.append(f"skipped {key}: shape {tuple(value.shape)} != {tuple(target[key].shape)}")
            continue
        target[key] = value.to(target[key].dtype)
        loaded += 1
    missing = [key for key in target if key not in source]
    if missing:
        notes.append(f"{len(missing)} tensors not in the pretrained file kept their fresh values")
    if loaded == 0:
        raise PretrainedError(f"{path}: no layer matches this model (preset or n_mels differ?)")
    model.load_state_dict(target)
    notes.insert(0, f"warm start from {path}: {loaded} tensors loaded")
    return notes


def _copy_embedding_rows(target: Tensor, source: Tensor, source_symbols: list[str] | None,
                         symbols: list[str]) -> int:
    if source_symbols is None or source.shape[1] != target.shape[1]:
        return 0
    index = {s: i for i, s in enumerate(source_symbols)}
    copied = 0
    with torch.no_grad():
        for row, symbol in enumerate(symbols):
            source_row = index.get(symbol)
            if source_row is not None and source_row < source.shape[0]:
                target[row] = source[source_row].to(target.dtype)
                copied += 1
    return copied
