"""What every model with attention shares: masks, the guided-attention prior, alignment figures."""

from __future__ import annotations

import torch
from torch import Tensor


def lengths_mask(lengths: Tensor, max_len: int) -> Tensor:
    """[batch, max_len] True where the position is real (not padding)."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def guided_attention_weights(text_lengths: Tensor, mel_lengths: Tensor, max_mel: int, max_text: int,
                             sigma: float) -> Tensor:
    """[batch, mel, text] penalty far from the diagonal (Tachibana et al. 2017), 0 on padding."""
    n = torch.arange(max_mel, device=mel_lengths.device, dtype=torch.float32)[None, :, None]
    t = torch.arange(max_text, device=mel_lengths.device, dtype=torch.float32)[None, None, :]
    n_norm = n / mel_lengths[:, None, None].float()
    t_norm = t / text_lengths[:, None, None].float()
    weights = 1.0 - torch.exp(-((n_norm - t_norm) ** 2) / (2 * sigma * sigma))
    mask = lengths_mask(mel_lengths, max_mel)[:, :, None] & lengths_mask(text_lengths, max_text)[:, None, :]
    return weights * mask


def attention_score(alignments: Tensor, mel_lengths: Tensor) -> Tensor:
    """Per decoder frame the highest attention weight, averaged over real frames, then the batch.

    This is sharpness, not alignment: attention can be sharp on the wrong characters.
    """
    peak = alignments.max(dim=2).values  # [B, T]
    mask = lengths_mask(mel_lengths, alignments.shape[1]).float()
    per_clip = (peak * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    return per_clip.mean()


#: How far (as a share of the text) an attention peak may lie from the diagonal and still count.
DIAGONAL_BAND = 0.15


def diagonality(alignments: Tensor, text_lengths: Tensor, step_lengths: Tensor) -> Tensor:
    """Share of real decoder steps whose attention peak lies within `DIAGONAL_BAND` of the diagonal.

    The diagonal runs from the first character at the first step to the last character at the
    last step; 1 = the attention reads the text at an even pace, about 0.3 = no relation.
    """
    peak = alignments.argmax(dim=2).float()  # [B, T]
    t = torch.arange(alignments.shape[1], device=alignments.device, dtype=torch.float32)[None, :]
    along_text = peak / (text_lengths[:, None].float() - 1).clamp(min=1)
    along_time = t / (step_lengths[:, None].float() - 1).clamp(min=1)
    mask = lengths_mask(step_lengths, alignments.shape[1]).float()
    near = ((along_text - along_time).abs() <= DIAGONAL_BAND).float()
    return ((near * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)).mean()


def load_matching(model: torch.nn.Module, path: object) -> list[str]:
    """Copy the tensors of a voxtop checkpoint or export whose names and shapes match `model`."""
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"pretrained model {path} does not exist (train.pretrained)") from None
    except Exception as exc:  # noqa: BLE001 — an unpicklable or damaged file: refuse it, run nothing
        raise ValueError(f"refusing to load {path} as pretrained weights (train.pretrained): "
                         f"{type(exc).__name__}") from None
    source = payload.get("model") if isinstance(payload, dict) else None
    if not isinstance(source, dict):
        raise ValueError(f"{path} is not a voxtop checkpoint or export (no 'model' weights); "
                         "set train.pretrained to one of this model's checkpoints")
    target = model.state_dict()
    loaded, notes = 0, []
    for key, value in source.items():
        key = key.removeprefix("module.")
        if key in target and isinstance(value, Tensor) and value.shape == target[key].shape:
            target[key] = value.to(target[key].dtype)
            loaded += 1
        else:
            notes.append(f"skipped {key}: not in this model or of another shape")
    if loaded == 0:
        raise ValueError(f"{path}: no layer matches this model (another model, preset or n_mels?)")
    model.load_state_dict(target)
    return [f"warm start from {path}: {loaded} tensors loaded", *notes[:20]]
