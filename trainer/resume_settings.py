"""Which settings of a stopped run may change when it resumes, and changing them in its config.toml.

Torch-free: the Parameters screen and `voxtop resume --set` both use it.
"""

from __future__ import annotations

import time
from typing import Any

from trainer import config as config_mod
from trainer.rundir import atomic_write_text


class Refused(Exception):
    """A setting a resume cannot take; the message says which, why and what to do instead."""


#: Sections a resumed run may change: how long and how it trains, never what its weights are.
RESUME_SECTIONS = ("train", "checkpoint", "schedule", "health", "device")
FIXED_ON_RESUME = {"train.pretrained"}  # only read at a fresh start
ALSO_ON_RESUME = {"data.alignment_text"}  # the sentence rendered at each checkpoint


def resume_settable(key: str) -> bool:
    """Whether `key` may change when a run resumes (epochs, learning rate, ...; not model or features)."""
    return (key.split(".")[0] in RESUME_SECTIONS and key not in FIXED_ON_RESUME) or key in ALSO_ON_RESUME


def apply_resume_settings(run: Any, overrides: list[str]) -> list[str]:
    """Apply `section.key=value` overrides to a stopped run's config.toml; the changes, as `key: old -> new`.

    The trainer reads config.toml when it resumes, so `train.epochs=1000` trains on to 1000 epochs.
    Model and feature settings are refused: the checkpoint's weights were made for them. Each change
    is also appended to train.log, so the run's own history says what was changed and when.
    """
    try:
        before = config_mod.load(run.config_path)
        after = config_mod.load(run.config_path, overrides)
    except config_mod.ConfigError as exc:
        raise Refused(f"invalid setting for {run.name}:\n{exc}") from None
    old, new = _flat(before), _flat(after)
    changed = [key for key in new if new[key] != old[key]]
    fixed = [key for key in changed if not resume_settable(key)]
    if fixed:
        raise Refused(f"{', '.join(fixed)} cannot change when a run resumes: its checkpoints were made "
                      f"for {', '.join(f'{k} = {old[k]!r}' for k in fixed)}. Start a new run instead, "
                      "e.g. with --set train.pretrained=CHECKPOINT to start from this one's weights")
    changes = [f"{key}: {old[key]!r} -> {new[key]!r}" for key in changed]
    if changes:
        atomic_write_text(run.config_path, config_mod.dumps(after))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(run.log_path, "a", encoding="utf-8") as log:
            log.writelines(f"{stamp} voxtop resume: set {change}\n" for change in changes)
    return changes


def _flat(config: Any) -> dict[str, Any]:
    return {f"{section}.{name}": value for section, fields in config.to_dict().items() for name, value in fields.items()}
