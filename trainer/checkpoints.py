"""Checkpoint payloads, atomic saving, loading for resume, and rotation rules."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.rundir import CheckpointFile, RunDir, atomic_write


def rng_states() -> dict[str, Any]:
    """Every random generator the training step draws from, so a resume continues the stream."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def save(run: RunDir, step: int, payload: dict[str, Any]) -> Path:
    """Write `step-<step>.pt` atomically: temp file in the same folder, fsync, rename."""
    path = run.checkpoint_path(step)
    atomic_write(path, lambda handle: torch.save(payload, handle))
    return path


def load(path: Path) -> dict[str, Any]:
    """A checkpoint of this run for resuming.

    Resume checkpoints carry optimizer and RNG state (numpy arrays, Python tuples), which
    `weights_only=True` refuses; they are only ever read from the run's own folder, which
    only the trainer writes. Files from elsewhere go through `models.tacotron2.read_pretrained`.
    """
    return torch.load(str(path), map_location="cpu", weights_only=False)


def set_aside_newer(run: RunDir, step: int) -> Path | None:
    """Move checkpoints (and their pictures and audio) newer than `step` out of the listing.

    Resuming from an older checkpoint would otherwise overwrite them as training reaches
    the same steps again; they go to `checkpoints/superseded-<time>/`, kept, never listed.
    """
    newer = [c for c in run.checkpoints() if c.step > step]
    if not newer:
        return None
    folder = run.checkpoints_dir / f"superseded-{time.strftime('%Y%m%d_%H%M%S')}"
    folder.mkdir(exist_ok=True)
    for found in newer:
        for path in (found.path, run.alignment_path(found.step), run.mel_path(found.step),
                     run.sample_path(found.step)):
            if path.exists():
                os.replace(path, folder / f"{path.parent.name}-{path.name}")
    return folder


@dataclass(frozen=True)
class RotationRules:
    max_to_keep: int        # newest kept (0 = all)
    keep_best: int          # lowest validation loss kept
    backup_every_steps: int  # multiples kept forever (0 = none)


def to_delete(checkpoints: list[CheckpointFile], val_loss: dict[int, float], rules: RotationRules,
              protected: set[int] | frozenset[int] = frozenset()) -> list[CheckpointFile]:
    """The checkpoints rotation removes; never the newest, the best ones or `protected`."""
    if not checkpoints or rules.max_to_keep == 0:
        return []
    newest_first = sorted(checkpoints, key=lambda c: c.step, reverse=True)
    keep = {c.step for c in newest_first[:rules.max_to_keep]} | set(protected)
    scored = sorted((val_loss[c.step], c.step) for c in checkpoints if c.step in val_loss)
    keep.update(step for _, step in scored[:rules.keep_best])
    if rules.backup_every_steps:
        keep.update(c.step for c in checkpoints if c.step % rules.backup_every_steps == 0)
    return [c for c in checkpoints if c.step not in keep]
