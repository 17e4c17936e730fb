"""The run configuration: dataclass schema, TOML load/save, overrides, validation (no torch).

Every field carries the metadata the TUI's parameter form is generated from:
a label, a one-line help, a unit, bounds or choices, and whether it is one of
the few parameters a user must look at (`required`) or an advanced one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from trainer.text import LANGUAGES

DEFAULT_ALIGNMENT_TEXT = "The quick brown fox jumps over the lazy dog."


def param(default: Any, label: str, help: str, *, unit: str = "", min: float | None = None,
          max: float | None = None, choices: tuple[Any, ...] | None = None,
          required: bool = False, path: bool = False) -> Any:
    """A config field with the metadata the parameter form and the validator use."""
    meta = {"label": label, "help": help, "unit": unit, "min": min, "max": max,
            "choices": choices, "required": required, "path": path}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    """Which recordings to train on and how to turn them into features."""

    dataset: str = param("", "Dataset", "Folder in LJSpeech format (metadata.csv + wavs/)",
                         required=True, path=True)
    language: str = param("en", "Language", "Language of the transcripts; picks alphabet and cleaner",
                          choices=tuple(LANGUAGES), required=True)
    val_fraction: float = param(0.05, "Validation fraction", "Share of clips held out for validation",
                                min=0.0, max=0.5)
    seed: int = param(1234, "Split seed", "Seed of the train/validation split and of `fraction`",
                      min=0, max=2**31 - 1)
    fraction: float = param(1.0, "Data fraction", "Use a seeded random part of the clips (1 = all)",
                            min=0.001, max=1.0)
    sample_rate: int = param(22050, "Sample rate", "Rate every clip must have", unit="Hz",
                             min=8000, max=48000)
    resample: bool = param(False, "Resample", "Resample clips whose rate differs instead of refusing them")
    n_fft: int = param(1024, "FFT size", "STFT window length in samples", min=256, max=4096)
    hop: int = param(256, "Hop length", "STFT hop in samples", unit="samples", min=64, max=1024)
    win: int = param(1024, "Window length", "STFT window in samples", unit="samples", min=256, max=4096)
    n_mels: int = param(80, "Mel bands", "Number of mel filterbank channels", min=20, max=256)
    fmin: float = param(0.0, "Lowest frequency", "Lower edge of the mel filterbank", unit="Hz",
                        min=0.0, max=4000.0)
    fmax: float = param(8000.0, "Highest frequency", "Upper edge of the mel filterbank", unit="Hz",
                        min=1000.0, max=24000.0)
    alignment_text: str = param(DEFAULT_ALIGNMENT_TEXT, "Alignment sentence",
                                "Spoken at each checkpoint to draw the alignment picture")
    trim_silence: bool = param(True, "Trim silence",
                               "Cut leading and trailing silence off each clip when its features are made "
                               "(the stop token then marks the end of speech, not of a silent tail)")
    trim_db: float = param(45.0, "Trim threshold",
                           "Audio quieter than this far below the clip's loudest frame counts as silence",
                           unit="dB", min=10.0, max=100.0)


@dataclass
class ModelConfig:
    """Which model and how large."""

    name: str = param("tacotron2", "Model",
                      "Model architecture: tacotron2, or dctts (DC-TTS: Text2Mel and SSRN, trained as a pair of runs)",
                      choices=("tacotron2", "dctts"))
    preset: str = param("full", "Size preset",
                        "`full` = the published sizes of the model; `tiny` for CPU demos and tests",
                        choices=("full", "tiny"))
    network: str = param("", "Network",
                         "DC-TTS: the network this run trains (text2mel or ssrn); empty = voxtop train "
                         "starts both, as a pair of runs", choices=("", "text2mel", "ssrn"))
    pair: str = param("", "Paired run",
                      "DC-TTS: the run (folder name beside this one) that trains the other network of the voice")
    dropout: float = param(0.1, "Dropout", "Decoder and attention dropout", min=0.0, max=0.9)
    frames_per_step: int = param(2, "Frames per decoder step",
                                 "Mel frames the decoder predicts at once (Tacotron's reduction factor r); "
                                 "2 or 3 learns to run on its own output sooner, 1 is the published Tacotron2",
                                 min=1, max=8)


#: Parameters that mean something to some models only (the form shows them for those); the rest apply to all.
MODEL_ONLY: dict[str, tuple[str, ...]] = {
    "model.frames_per_step": ("tacotron2",),   # DC-TTS's reduction factor is the paper's 4
    "model.network": ("dctts",), "model.pair": ("dctts",),
    "train.gate_pos_weight": ("tacotron2",),   # DC-TTS has no stop token: it stops at the end of the text
    "train.cuda_graphs": ("tacotron2",),
}


def applies_to(key: str, model: str) -> bool:
    """Whether the parameter `section.name` means something to the model `model`."""
    return model in MODEL_ONLY.get(key, (model,))


@dataclass
class TrainConfig:
    """How long and how to optimise."""

    epochs: int = param(500, "Epochs", "Passes over the training clips", min=1, max=1_000_000,
                        required=True)
    max_steps: int = param(0, "Max steps", "Stop after this many optimiser steps (0 = no limit)",
                           unit="steps", min=0, max=10**9)
    batch_size: int = param(32, "Batch size", "Clips per step; lower it on out-of-memory errors",
                            min=1, max=4096, required=True)
    learning_rate: float = param(1e-3, "Learning rate", "Adam step size", min=1e-7, max=1.0)
    weight_decay: float = param(1e-6, "Weight decay", "L2 penalty of Adam", min=0.0, max=1.0)
    grad_clip: float = param(1.0, "Gradient clip", "Max gradient norm (0 = off)", min=0.0, max=1000.0)
    precision: str = param("auto", "Precision",
                           "auto = bf16 where the GPU supports it, else fp32; fp16 uses a grad scaler",
                           choices=("auto", "fp32", "bf16", "fp16"))
    cuda_graphs: str = param("auto", "CUDA graphs",
                             "auto = capture the training step as a CUDA graph on one GPU at fp32/bf16 "
                             "(several times faster: the decoder launches many small kernels); off = eager",
                             choices=("auto", "off"))
    pretrained: str = param("", "Pretrained model",
                            "Warm start from a voxtop checkpoint or NVIDIA's Tacotron2 file (empty = none)",
                            required=True, path=True)
    guided_attention_weight: float = param(10.0, "Guided attention weight",
                                           "Weight of the diagonal attention prior (0 = off)",
                                           min=0.0, max=100.0)
    guided_attention_sigma: float = param(0.2, "Guided attention sigma",
                                          "Width of the diagonal band", min=0.01, max=1.0)
    gate_pos_weight: float = param(8.0, "Stop-token weight",
                                   "Weight of the few frames where speech ends in the stop-token loss "
                                   "(1 = unweighted; higher learns to stop sooner)", min=1.0, max=1000.0)
    stop_after_end_frames: int = param(10, "Stop after the end",
                                       "At inference, stop once the attention has rested on the last "
                                       "character this long, even if the stop token never fires (0 = off)",
                                       unit="frames", min=0, max=10_000)
    seed: int = param(1234, "Seed", "Seed of weights, shuffling and dropout", min=0, max=2**31 - 1)
    log_every_steps: int = param(10, "Log every", "Steps between progress lines and train records",
                                 unit="steps", min=1, max=100_000)
    eval_every_steps: int = param(0, "Validate every", "Steps between validations (0 = each epoch)",
                                  unit="steps", min=0, max=10**9)
    max_decoder_steps: int = param(1000, "Max decoder steps",
                                   "Frame limit of free-running inference (alignment sentence)",
                                   unit="frames", min=10, max=100_000)


@dataclass
class CheckpointConfig:
    """When checkpoints are written and which are kept."""

    every_steps: int = param(1000, "Checkpoint every", "Steps between checkpoints (0 = off)",
                             unit="steps", min=0, max=10**9)
    every_minutes: float = param(0.0, "Checkpoint every (time)", "Minutes between checkpoints (0 = off)",
                                 unit="min", min=0.0, max=10_000.0)
    max_to_keep: int = param(5, "Keep newest", "Newest checkpoints kept by rotation (0 = keep all)",
                             min=0, max=100_000)
    backup_every_steps: int = param(0, "Backup every",
                                    "Checkpoints at multiples of this step are never rotated (0 = none)",
                                    unit="steps", min=0, max=10**9)
    keep_best: int = param(3, "Keep best", "Lowest-validation-loss checkpoints kept by rotation",
                           min=1, max=1000)


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, early stopping and the overtraining detector."""

    reduce_lr_on_plateau: bool = param(False, "Reduce LR on plateau",
                                       "Multiply the learning rate by `plateau_factor` when val loss stalls")
    plateau_patience: int = param(5, "Plateau patience", "Validations without improvement before reducing",
                                  min=1, max=10_000)
    plateau_factor: float = param(0.5, "Plateau factor", "Learning-rate multiplier", min=0.01, max=0.99)
    early_stop: bool = param(False, "Early stopping",
                             "Stop when val loss stops improving or overtraining is detected")
    es_patience: int = param(10, "Early-stop patience", "Validations without improvement before stopping",
                             min=1, max=10_000)
    es_min_delta: float = param(0.0, "Early-stop min delta", "Smallest decrease that counts as improvement",
                                min=0.0, max=1000.0)
    overtraining: bool = param(True, "Overtraining detector", "Watch val vs. train loss for overtraining")
    overtraining_smoothing: float = param(0.6, "Detector smoothing", "EMA weight of the detector (0 = none)",
                                          min=0.0, max=0.999)
    overtraining_patience: int = param(5, "Detector patience",
                                       "Validations above the minimum before it calls overtraining",
                                       min=1, max=10_000)


@dataclass
class HealthConfig:
    """Read-through health: held-out sentences rendered free-running at every checkpoint."""

    enabled: bool = param(True, "Read-through health",
                          "At each checkpoint, render held-out sentences without teacher forcing and "
                          "measure whether the model reads them to the end and stops (in a worker process)")
    sentences: str = param("", "Held-out sentences",
                           "Sentences separated by ' | ' (empty = the language's defaults, not in typical "
                           "datasets)")
    recogniser: bool = param(True, "Speech recogniser",
                             "English: ask an offline recogniser (pocketsphinx) what each rendering says")


@dataclass
class DeviceConfig:
    """Where the trainer runs."""

    accelerator: str = param("auto", "Accelerator", "auto = CUDA when available, else CPU",
                             choices=("auto", "cuda", "cpu"))
    gpus: list[int] = param([], "GPUs", "GPU indices to use (empty = the first / all with nproc)")
    nproc: int = param(1, "Processes", "Training processes on this machine (DDP under torchrun)",
                       min=1, max=64)


@dataclass
class Config:
    """The whole run configuration, one section per TOML table."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


@dataclass(frozen=True)
class FieldInfo:
    """One parameter of the schema, as the form and the validator see it."""

    section: str
    name: str
    type: type
    default: Any
    label: str
    help: str
    unit: str
    min: float | None
    max: float | None
    choices: tuple[Any, ...] | None
    required: bool
    path: bool

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"


_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "list[int]": list}


def schema() -> list[FieldInfo]:
    """Every parameter in section order, as `FieldInfo`."""
    infos = []
    for section, cls in SECTIONS.items():
        defaults = cls()
        for f in dataclasses.fields(cls):
            m = f.metadata
            infos.append(FieldInfo(section, f.name, _TYPES[str(f.type)], getattr(defaults, f.name),
                                   m["label"], m["help"], m["unit"], m["min"], m["max"],
                                   m["choices"], m["required"], m["path"]))
    return infos


def field_info(key: str) -> FieldInfo:
    for info in schema():
        if info.key == key:
            return info
    raise KeyError(key)


# --- errors --------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config, located as precisely as we can."""

    key: str
    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        return f"{where}{self.key}: {self.message}"


class ConfigError(ValueError):
    """All the problems of a config at once, so a user fixes them in one go."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _fmt(value: Any, limit: int = 60) -> str:
    """A value as an error message shows it: quoted if text, cut short if long."""
    try:
        text = repr(value) if isinstance(value, str) else str(value)
    except ValueError:  # an int of more than sys.get_int_max_str_digits() digits
        return "a number too long to show"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_value(info: FieldInfo, value: Any) -> tuple[Any, str | None]:
    """(the value coerced to the field's type, or an error message saying what is allowed)."""
    kind = info.type
    if kind is bool:
        if not isinstance(value, bool):
            return value, f"{_fmt(value)} is not true or false"
        return value, None
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return value, f"{_fmt(value)} is not a whole number"
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value, f"{_fmt(value)} is not a number"
        try:
            value = float(value)
        except OverflowError:
            return value, f"{_fmt(value)} is too large"
        if not math.isfinite(value):
            return value, f"{value} is not a finite number"
    elif kind is str:
        if not isinstance(value, str):
            return value, f"{_fmt(value)} is not text (quote it)"
    elif kind is list:
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1024 for v in value):
            return value, f"{_fmt(value)} is not a list of GPU indices like [0, 1]"
        return value, None
    if info.choices is not None and value not in info.choices:
        return value, f"{_fmt(value)} is not one of {', '.join(_fmt(c) for c in info.choices)}"
    lo, hi = info.min, info.max
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        unit = f" {info.unit}" if info.unit else ""
        return value, f"{_fmt(value)} is out of range: allowed {_fmt(lo)} to {_fmt(hi)}{unit}"
    return value, None


def _line_of(text: str | None, section: str, key: str | None = None) -> int | None:
    """The line where `[section]` (or `key` inside it) is written, for error messages."""
    if text is None:
        return None
    current = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        header = re.match(r"^\[\s*([^\]\s]+)\s*\]", line)
        if header:
            current = header.group(1)
            if key is None and current == section:
                return number
            continue
        if key is not None and current == section and re.match(rf"^{re.escape(key)}\s*=", line):
            return number
    return None


def from_dict(raw: dict[str, Any], *, source: str | None = None, text: str | None = None,
              base_dir: Path | None = None, set_by: dict[str, str] | None = None) -> Config:
    """A validated Config from nested dicts; raises ConfigError listing every problem.

    `set_by` maps keys given with `--set` to that option's text: their problems name the `--set`,
    not a line of the file.
    """
    set_by = set_by or {}
    problems: list[Problem] = []
    sections: dict[str, Any] = {}
    for section, values in raw.items():
        if section not in SECTIONS:
            problems.append(Problem(section, f"unknown section [{section}]; sections are "
                                    f"{', '.join(SECTIONS)}", source, _line_of(text, section)))
            continue
        if not isinstance(values, dict):
            problems.append(Problem(section, "must be a table like [section]", source))
            continue
        sections[section] = values
    by_key = {info.key: info for info in schema()}
    kwargs: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for section, values in sections.items():
        for name, value in values.items():
            key = f"{section}.{name}"
            info = by_key.get(key)
            line = _line_of(text, section, name)
            if key in set_by:
                source_of, line = f"--set {set_by[key]}", None
            else:
                source_of = source
            if info is None:
                known = ", ".join(i.name for i in schema() if i.section == section)
                problems.append(Problem(key, f"unknown key; [{section}] takes {known}", source_of, line))
                continue
            value, error = check_value(info, value)
            if error:
                problems.append(Problem(key, error, source_of, line))
                continue
            if info.path and value and base_dir is not None:
                value, error = _resolve_path(value, base_dir)
                if error:
                    problems.append(Problem(key, error, source_of, line))
                    continue
            kwargs[section][name] = value
    if problems:
        raise ConfigError(problems)
    config = Config(**{s: SECTIONS[s](**kw) for s, kw in kwargs.items()})
    problems = cross_check(config)
    if problems:
        raise ConfigError([Problem(p.key, p.message, f"--set {set_by[p.key]}", None) if p.key in set_by
                           else Problem(p.key, p.message, source, p.line) for p in problems])
    return config


def _resolve_path(value: str, base_dir: Path | None) -> tuple[str, str | None]:
    """(`value` made absolute against `base_dir`, or an error saying why it is no usable path)."""
    try:
        path = Path(value).expanduser()
        return str(((base_dir / path) if base_dir is not None else path).resolve()), None
    except RuntimeError:  # `~someone` with no such user
        return value, f"{_fmt(value)} is not a usable path: no home folder for {value.split('/')[0]!r}"
    except (ValueError, OSError) as exc:  # a NUL byte, a name too long, ...
        return value, f"{_fmt(value)} is not a usable path: {exc}"


def cross_check(config: Config) -> list[Problem]:
    """Problems that involve more than one field."""
    problems = []
    d = config.data
    if d.win > d.n_fft:
        problems.append(Problem("data.win", f"{d.win} is larger than data.n_fft = {d.n_fft}"))
    if d.hop > d.win:
        problems.append(Problem("data.hop", f"{d.hop} is larger than data.win = {d.win}"))
    if d.fmax > d.sample_rate / 2:
        problems.append(Problem("data.fmax", f"{d.fmax:g} Hz is above half the sample rate "
                                f"({d.sample_rate / 2:g} Hz)"))
    if d.fmin >= d.fmax:
        problems.append(Problem("data.fmin", f"{d.fmin:g} Hz must be below data.fmax = {d.fmax:g} Hz"))
    return problems


def parse_override(text: str) -> tuple[str, str, Any]:
    """`section.key=value` → (section, key, value); the value is read as TOML, else as text."""
    key, sep, raw_value = text.partition("=")
    key = key.strip()
    if not sep or key.count(".") != 1:
        raise ConfigError([Problem(key or text, f"--set {text!r}: write it as section.key=value, "
                                   "e.g. train.epochs=100")])
    section, name = key.split(".")
    try:
        value = tomllib.loads(f"v = {raw_value.strip()}")["v"]
    except (ValueError, RecursionError):  # TOMLDecodeError is a ValueError
        value = raw_value.strip()
    return section, name, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of `raw` with every `section.key=value` override set."""
    merged = {s: dict(v) if isinstance(v, dict) else v for s, v in raw.items()}
    path_keys = {info.key for info in schema() if info.path}
    for text in overrides:
        section, name, value = parse_override(text)
        if f"{section}.{name}" in path_keys and isinstance(value, str) and value:
            value, error = _resolve_path(value, None)  # typed in a shell: relative to it
            if error:
                raise ConfigError([Problem(f"{section}.{name}", error)])
        table = merged.setdefault(section, {})
        if isinstance(table, dict):
            table[name] = value
    return merged


#: Keys whose default changed, with the value that applied before they existed. A run's
#: config.toml spells out every key, so one without these was written by an older voxtop and
#: meant the old behaviour (a checkpoint of it has, for instance, one frame per decoder step).
_OLD_DEFAULTS = {("model", "frames_per_step"): 1, ("data", "trim_silence"): False,
                 ("train", "gate_pos_weight"): 1.0}


def upgrade_run_config(raw: dict[str, Any]) -> dict[str, Any]:
    """A run's resolved config (config.toml or a checkpoint's) with keys it predates set to their old value."""
    merged = {s: dict(v) if isinstance(v, dict) else v for s, v in raw.items()}
    for (section, key), old in _OLD_DEFAULTS.items():
        table = merged.get(section)
        if isinstance(table, dict) and table and key not in table:
            table[key] = old
    return merged


def load(path: str | Path, overrides: list[str] | None = None, run_config: bool = False) -> Config:
    """Read, override and validate a TOML config; relative paths resolve against its folder.

    `run_config`: the file is a run's config.toml (every key spelled out); see `upgrade_run_config`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem("config", f"{path} does not exist")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem("config", f"cannot read {path}: {exc}")]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))
        raise ConfigError([Problem("config", f"not valid TOML: {exc}", str(path),
                                   int(line.group(1)) if line else None)]) from None
    except (ValueError, RecursionError) as exc:  # a number of 5,000 digits, arrays nested 1,000 deep
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
        raise ConfigError([Problem("config", f"not usable TOML: {reason}", str(path))]) from None
    if run_config:
        raw = upgrade_run_config(raw)
    raw = apply_overrides(raw, overrides or [])
    set_by = {}
    for override in overrides or []:
        section, name, _ = parse_override(override)
        set_by[f"{section}.{name}"] = override.strip()
    return from_dict(raw, source=str(path), text=text, base_dir=path.parent.resolve(), set_by=set_by)


def pretrained_problem(path: str) -> str | None:
    """Why `train.pretrained` cannot be warm-started from, or None: checked with the config, before a
    run folder is made (a missing or empty file must not cost a run folder and a feature pass)."""
    import errno
    import stat as stat_mod

    try:
        mode = os.stat(path).st_mode
        if not stat_mod.S_ISREG(mode):
            return f"train.pretrained: {path} is not a file"
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            head = os.read(fd, 4)
        finally:
            os.close(fd)
    except FileNotFoundError:
        return f"train.pretrained: {path} does not exist; fix the path or leave it empty"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"train.pretrained: {path} is a symbolic link loop"
        return f"train.pretrained: cannot read {path}: {exc.strerror or exc}"
    if not head:
        return f"train.pretrained: {path} is empty (0 bytes); was its download or copy cut short?"
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):
        return f"train.pretrained: {path} is not a PyTorch checkpoint (neither a zip nor a pickle file)"
    return None


def dumps(config: Config) -> str:
    """The config as TOML with every field spelled out."""
    return tomli_w.dumps(config.to_dict())


def save(config: Config, path: str | Path) -> None:
    """Write the config as TOML (atomically: the reader never sees half a file)."""
    from trainer.rundir import atomic_write_text

    atomic_write_text(Path(path), dumps(config))
