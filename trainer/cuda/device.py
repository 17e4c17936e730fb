"""Device and precision: which device, which autocast dtype, whether a grad scaler is needed."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import torch

from trainer.config import Config


@dataclass(frozen=True)
class Placement:
    """Where and how the trainer computes."""

    device: torch.device
    precision: str  # fp32, bf16 or fp16 — never auto
    reason: str = ""

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self) -> Any:
        """The autocast context of the forward pass (a no-op for fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A scaler that is active only for fp16, where small gradients underflow."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")


def select_device(config: Config, local_rank: int = 0) -> torch.device:
    """`[device] accelerator` and `gpus` → a torch device; CUDA only where it exists."""
    wanted = config.device.accelerator
    if wanted == "cpu" or (wanted == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device.accelerator = 'cuda' but no CUDA GPU is visible "
                           f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); "
                           "set it to 'auto' or 'cpu'")
    gpus = config.device.gpus or list(range(torch.cuda.device_count()))
    index = gpus[local_rank % len(gpus)]
    if index >= torch.cuda.device_count():
        raise RuntimeError(f"device.gpus lists GPU {index} but only {torch.cuda.device_count()} "
                           "are visible")
    torch.cuda.set_device(index)
    # TF32 matmuls keep fp32 training accurate enough and much faster on Ampere and newer.
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return torch.device("cuda", index)


def resolve_precision(requested: str, device: torch.device) -> tuple[str, str]:
    """(fp32|bf16|fp16, why): `auto` is bf16 on GPUs that support it, otherwise fp32."""
    if device.type != "cuda":
        if requested in ("bf16", "fp16"):
            return "fp32", f"{requested} needs a CUDA GPU; training in fp32 on the CPU"
        return "fp32", "CPU"
    bf16_ok = torch.cuda.is_bf16_supported()
    if requested == "auto":
        return ("bf16", "auto: GPU supports bf16") if bf16_ok else ("fp32", "auto: no bf16 on this GPU")
    if requested == "bf16" and not bf16_ok:
        return "fp16", "bf16 is not supported by this GPU; using fp16 with a grad scaler"
    return requested, "as configured"


def place(config: Config, local_rank: int = 0) -> Placement:
    device = select_device(config, local_rank)
    precision, reason = resolve_precision(config.train.precision, device)
    return Placement(device, precision, reason)
