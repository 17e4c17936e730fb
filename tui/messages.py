"""Messages that workers post to screens; handlers on the screens own every state change."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from trainer.rundir import CheckpointFile, RunDir


@dataclass
class RunsListed(Message):
    """A fresh summary of every run (Runs screen)."""

    summaries: list[Any]


@dataclass
class DatasetsListed(Message):
    """The dataset folders found under the datasets root."""

    paths: list[Path]


@dataclass
class ScanProgress(Message):
    """A dataset scan checked `done` of `total` clips."""

    path: Path
    done: int
    total: int


@dataclass
class DatasetScanned(Message):
    """A dataset's validation report (trainer.dataset.Report)."""

    path: Path
    report: Any


@dataclass
class ReferenceReady(Message):
    """What earlier runs of `preset` tell about the next (tui.summary.PresetReference)."""

    preset: str
    reference: Any


@dataclass
class GpuChecked(Message):
    """How many GPUs NVML found (0 with `reason` when none): the Parameters screen picks a preset."""

    gpus: int
    reason: str | None


@dataclass
class RunLaunched(Message):
    """A run directory was written and its trainer started."""

    run: RunDir


@dataclass
class RunUpdated(Message):
    """New data for the Monitor (a tui.screens.monitor_data.MonitorView)."""

    view: Any


@dataclass
class CheckpointsChanged(Message):
    """Files appeared or vanished in checkpoints/ (posted from the watchdog thread)."""


@dataclass
class CheckpointsListed(Message):
    """The run's checkpoint files, oldest first."""

    checkpoints: list[CheckpointFile]


@dataclass
class GpuSampled(Message):
    """One GPU sample with its history (tui.gpu.GpuSnapshot), for the GPU panel and view."""

    snapshot: Any


@dataclass
class ActionFailed(Message):
    """A worker's action failed; `text` is for people, never a traceback."""

    text: str


@dataclass
class ActionDone(Message):
    """A worker's action succeeded; `text` says what happened."""

    text: str


@dataclass
class ConfigSaved(Message):
    """The Parameters form wrote its config to `path` (whose mtime was then `mtime_ns`)."""

    path: Path
    mtime_ns: int
    config: Any


@dataclass
class FormLoaded(Message):
    """The Parameters form's configs and checkpoints were read (a `tui.screens.params.FormInputs`)."""

    inputs: Any
