"""Checkpoint payloads, atomic saving, loading for resume, and rotation rules."""

from __future__ import annotations

import errno
import os
import pickle
import random
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.rundir import CheckpointFile, RunDir, atomic_write


def rng_states() -> dict[str, Any]:
    """Every random generator the training step draws from, so a resume continues the stream.

    Stored as tensors, lists and numbers only, so that `load` can use `weights_only=True`.
    """
    algorithm, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"algorithm": str(algorithm), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(position), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": {"version": int(version), "state": list(python_state), "gauss_next": gauss_next},
    }


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    numpy_state, python_state = states["numpy"], states["python"]
    if isinstance(numpy_state, dict):
        numpy_state = (numpy_state["algorithm"], numpy_state["keys"].numpy().astype(np.uint32),
                       numpy_state["pos"], numpy_state["has_gauss"], numpy_state["cached_gaussian"])
    np.random.set_state(numpy_state)
    if isinstance(python_state, dict):
        python_state = (python_state["version"], tuple(python_state["state"]), python_state["gauss_next"])
    random.setstate(python_state)


class CheckpointError(Exception):
    """A file that cannot be resumed from; the message says which and why."""


#: Below this much free space, a checkpoint write that torch reports as a short write is a full disk.
DISK_FULL_BELOW_BYTES = 256 * 2**20


def save(run: RunDir, step: int, payload: dict[str, Any]) -> Path:
    """Write `step-<step>.pt` atomically: temp file in the same folder, fsync, rename.

    torch's zip writer reports a disk that fills up as `RuntimeError: [enforce fail at
    inline_container.cc:...] . unexpected pos` (or `PytorchStreamWriter failed writing file`);
    that becomes the OSError it is (ENOSPC, naming the checkpoint), so the run's failure says
    "disk full writing ...", not a C++ assertion.
    """
    path = run.checkpoint_path(step)
    try:
        atomic_write(path, lambda handle: torch.save(payload, handle))
    except RuntimeError as exc:
        raise as_write_error(exc, path) from None
    return path


def as_write_error(exc: RuntimeError, path: Path) -> Exception:
    """torch's short-write RuntimeError as an OSError on `path` (ENOSPC when the disk is nearly
    full, EIO otherwise); any other RuntimeError unchanged."""
    text = str(exc)
    if "unexpected pos" not in text and "PytorchStreamWriter failed" not in text and "file write failed" not in text:
        return exc
    try:
        full = shutil.disk_usage(path.parent).free < DISK_FULL_BELOW_BYTES
    except OSError:
        full = False
    code = errno.ENOSPC if full else errno.EIO
    return OSError(code, os.strerror(code), str(path))


def load(path: Path) -> dict[str, Any]:
    """A checkpoint for resuming, read with `weights_only=True`.

    Whatever the file's origin (this run, another run, a download), unpickling may build
    only tensors, containers and numbers, so a hostile file cannot run code; such a file is
    refused with CheckpointError. Checkpoints of voxtop before RNG states were stored as
    tensors hold numpy arrays; the numpy types that rebuild plain arrays are allowed too.
    """
    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except pickle.UnpicklingError as exc:
        found = re.search(r"unsupported (GLOBAL \S+|operand \d+)", str(exc), re.IGNORECASE)
        detail = f" ({found.group(0)})" if found else ""
        raise CheckpointError(f"refusing to load {path}: it is not a plain checkpoint: it holds something "
                              f"besides tensors, containers and numbers{detail}, which could run code; "
                              "nothing in it was run") from None
    except Exception as exc:  # a zip error of a damaged or truncated file, ...
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {first}") from None
    if not isinstance(payload, dict) or not {"model", "optimizer", "progress", "rng"} <= payload.keys():
        raise CheckpointError(f"{path} is not a voxtop checkpoint (expected model, optimizer, progress "
                              "and rng entries); to start from its weights, use train.pretrained")
    return payload


def _numpy_array_globals() -> list[Any]:
    """What unpickling a plain numpy array needs (no object arrays: those need more)."""
    multiarray = getattr(np, "_core", None) or np.core
    return [multiarray.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


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
