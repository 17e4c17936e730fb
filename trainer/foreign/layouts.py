"""Recognising other trainers' run folders, and what a user of each watches.

Each layout says where the run's metrics are (TensorBoard event files, DLLogger JSON lines, a
Lightning `metrics.csv`), which files are its checkpoints, and which tags its users watch: the
one the overtraining verdict judges and the one whose local minima point at the checkpoints
worth a listen, each with the smoothing those users set in TensorBoard. The tag names and file
names are those of the versions named in the README ("Other trainers' runs").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from trainer.foreign.tbevents import find_event_files, is_event_file

RVC_WEIGHTS_RE = re.compile(r"(_\d+e_\d+s(_best_epoch)?|_e\d+_s\d+)\.pth$")
RVC_RESUMABLE_RE = re.compile(r"^G_\d+\.pth$")
COQUI_RE = re.compile(r"^(checkpoint_\d+|best_model(_\d+)?)\.pth$")
DLLOGGER_MARK = b"DLLL "


@dataclass(frozen=True)
class Watched:
    """The tags a user of a trainer watches, in order of preference, with TensorBoard's smoothing weight."""

    verdict: tuple[str, ...]
    """The tag the overtraining verdict judges (the first of these that the run logged)."""
    minima: tuple[str, ...]
    """The tag whose local minima are listed, each with its nearest checkpoint."""
    train: tuple[str, ...]
    """The tag shown as the train loss."""
    verdict_smoothing: float = 0.6
    minima_smoothing: float = 0.0


@dataclass(frozen=True)
class Layout:
    """A recognised run folder: which trainer wrote it, where its metrics and checkpoints are."""

    kind: str  # rvc, coqui, lightning, dllogger, tensorboard
    label: str  # as people name the trainer
    folder: Path
    metrics: str  # tensorboard, dllogger, csv
    watched: Watched
    checkpoint_folders: tuple[Path, ...] = ()
    metrics_file: Path | None = None
    config_file: Path | None = None
    log_file: Path | None = None
    extra_checkpoint_prefix: str = field(default="")

    def is_checkpoint(self, name: str) -> bool:
        """Whether a file name in one of `checkpoint_folders` is one of this trainer's checkpoints."""
        if self.kind == "rvc":
            if RVC_RESUMABLE_RE.match(name):
                return True
            return bool(RVC_WEIGHTS_RE.search(name)) and (not self.extra_checkpoint_prefix
                                                          or name.startswith(self.extra_checkpoint_prefix))
        if self.kind == "coqui":
            return bool(COQUI_RE.match(name))
        return name.endswith((".pth", ".pt", ".ckpt")) and not name.startswith(("D_", "."))

    def prefers(self, path: Path) -> int:
        """Of two files at one step, the higher wins: RVC's small weights file (what people use) over G_."""
        return 1 if self.kind == "rvc" and RVC_WEIGHTS_RE.search(path.name) else 0


RVC_WATCH = Watched(verdict=("loss/g/total",), minima=("loss/g/mel",), train=("loss/g/total",),
                    verdict_smoothing=0.987, minima_smoothing=0.0)
COQUI_WATCH = Watched(verdict=("EvalStats/avg_loss", "EvalStats/avg_loss_1", "EvalStats/avg_loss_0"),
                      minima=("EvalStats/avg_loss", "EvalStats/avg_loss_1", "EvalStats/avg_loss_0"),
                      train=("TrainIterStats/loss", "TrainIterStats/loss_1", "TrainEpochStats/avg_loss"),
                      verdict_smoothing=0.6, minima_smoothing=0.6)
LIGHTNING_WATCH = Watched(verdict=("val_loss", "val/loss", "loss_val"), minima=("val_loss", "val/loss", "loss_val"),
                          train=("loss_gen_all", "train_loss", "train/loss", "loss"),
                          verdict_smoothing=0.6, minima_smoothing=0.6)
DLLOGGER_WATCH = Watched(verdict=("val_loss", "val/loss", "val_loss_mel"), minima=("val_loss", "val/loss"),
                         train=("train_loss", "train/loss", "train_iter_loss", "loss"),
                         verdict_smoothing=0.6, minima_smoothing=0.6)
TENSORBOARD_WATCH = Watched(verdict=("val_loss", "val/loss", "eval/loss", "loss/val", "validation/loss"),
                            minima=("val_loss", "val/loss", "eval/loss", "loss/val", "validation/loss"),
                            train=("train_loss", "train/loss", "loss/train", "loss"),
                            verdict_smoothing=0.6, minima_smoothing=0.6)


def choose_tag(preferred: tuple[str, ...], tags: list[str], role: str) -> str | None:
    """The first of `preferred` among `tags`, else a tag that looks like it (`role`: val or train), else None."""
    for tag in preferred:
        if tag in tags:
            return tag
    lowered = [(tag, tag.lower()) for tag in tags]
    words = ("val", "eval", "valid") if role == "val" else ("train", "")
    for word in words:
        for tag, low in lowered:
            if "loss" in low and word in low and (role == "val" or not any(w in low for w in ("val", "eval"))):
                return tag
    return None


def _names(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(folder))
    except OSError:
        return []


def _dllogger_file(folder: Path, names: list[str]) -> Path | None:
    for name in names:
        if not (name.endswith((".json", ".jsonl", ".log")) or name.startswith("nvlog")):
            continue
        path = folder / name
        try:
            with open(path, "rb") as handle:
                if handle.read(len(DLLOGGER_MARK)) == DLLOGGER_MARK:
                    return path
        except OSError:
            continue
    return None


def newest_lightning_version(folder: Path) -> Path | None:
    """`lightning_logs/version_<N>/` with the highest N under `folder` (or `folder/lightning_logs`)."""
    for base in (folder, folder / "lightning_logs"):
        versions = [(int(name.split("_", 1)[1]), base / name) for name in _names(base)
                    if re.fullmatch(r"version_\d+", name) and (base / name).is_dir()]
        if versions:
            return max(versions)[1]
    return None


def recognise(folder: Path) -> Layout | None:
    """The layout of a run folder written by another trainer, None when it is none voxtop reads."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    names = _names(folder)
    version = newest_lightning_version(folder) if "version_0" in names or "lightning_logs" in names else None
    if version is not None:
        folder, names = version, _names(version)
    has_events = any(is_event_file(name) for name in names) or bool(find_event_files(folder, max_depth=1))
    config = folder / "config.json" if "config.json" in names else None
    if any(RVC_RESUMABLE_RE.match(n) or re.match(r"^D_\d+\.pth$", n) or RVC_WEIGHTS_RE.search(n) for n in names) \
            or (has_events and "eval" in names and config is not None):
        weights = [folder]
        webui_weights = folder.parent.parent / "assets" / "weights"  # RVC WebUI keeps small weights there
        if folder.parent.name == "logs" and webui_weights.is_dir():
            weights.append(webui_weights)
        return Layout("rvc", "RVC/Applio", folder, "tensorboard", RVC_WATCH, tuple(weights), config_file=config,
                      extra_checkpoint_prefix=folder.name + "_")
    if "trainer_0_log.txt" in names or any(COQUI_RE.match(n) for n in names):
        return Layout("coqui", "Coqui TTS", folder, "tensorboard", COQUI_WATCH, (folder,), config_file=config,
                      log_file=folder / "trainer_0_log.txt")
    if "hparams.yaml" in names or version is not None:
        metrics_csv = folder / "metrics.csv" if "metrics.csv" in names else None
        source = "tensorboard" if has_events or metrics_csv is None else "csv"
        return Layout("lightning", "PyTorch Lightning (Piper)", folder, source, LIGHTNING_WATCH,
                      (folder / "checkpoints", folder), metrics_file=metrics_csv,
                      config_file=folder / "hparams.yaml")
    dllogger = _dllogger_file(folder, names)
    if dllogger is not None:
        return Layout("dllogger", "DLLogger (NVIDIA DeepLearningExamples)", folder, "dllogger", DLLOGGER_WATCH,
                      (folder, folder / "checkpoints"), metrics_file=dllogger)
    if has_events:
        return Layout("tensorboard", "TensorBoard", folder, "tensorboard", TENSORBOARD_WATCH,
                      (folder, folder / "checkpoints"))
    return None
