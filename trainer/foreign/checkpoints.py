"""Other trainers' checkpoint files: which files are checkpoints, and the step each was saved at.

The step comes from the file name where the trainer writes it there; otherwise from the file's own
metadata, read without unpickling anything (a PyTorch checkpoint is a zip whose `data.pkl` is
walked opcode by opcode with `pickletools.genops`, which only parses); otherwise from when the
file was written, against the wall times of the logged steps. Nothing here loads a checkpoint.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from trainer.rundir.layout import CheckpointFile

#: RVC and Applio write the newest generator/discriminator under this number when they keep only the latest.
RVC_LATEST = 2333333
#: Most bytes of a checkpoint's data.pkl read for its step (the tensors are stored beside it, not in it).
MAX_PICKLE_BYTES = 16 * 2**20
#: Keys whose integer value at the top of a checkpoint's dict is its step, most telling first.
STEP_KEYS = ("global_step", "step", "iteration", "total_steps")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt")


@dataclass(frozen=True)
class NamedStep:
    """What a checkpoint's file name says: its step and epoch where it has them."""

    step: int | None
    epoch: int | None


_NAME_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^[GD]_(\d+)\.pth$"), "step"),  # RVC / Applio: G_<global step>.pth
    (re.compile(r"_(\d+)e_(\d+)s(?:_best_epoch)?\.pth$"), "epoch,step"),  # Applio: <model>_<E>e_<S>s.pth
    (re.compile(r"_e(\d+)_s(\d+)\.pth$"), "epoch,step"),  # RVC WebUI: <name>_e<E>_s<S>.pth
    (re.compile(r"^(?:checkpoint|best_model)_(\d+)\.pth$"), "step"),  # Coqui TTS
    (re.compile(r"epoch=(\d+)-step=(\d+)"), "epoch,step"),  # PyTorch Lightning
    (re.compile(r"step[=_-]?(\d+)", re.IGNORECASE), "step"),
    (re.compile(r"epoch[=_-]?(\d+)", re.IGNORECASE), "epoch"),
]


def named_step(name: str) -> NamedStep:
    """The step (and epoch) a checkpoint's file name carries, by the naming rules of the trainers voxtop reads."""
    for pattern, groups in _NAME_PATTERNS:
        match = pattern.search(name)
        if not match:
            continue
        values = dict(zip(groups.split(","), (int(g) for g in match.groups())))
        step = values.get("step")
        if step == RVC_LATEST and name.startswith(("G_", "D_")):
            step = None
        return NamedStep(step, values.get("epoch"))
    return NamedStep(None, None)


_METADATA_STEPS: dict[tuple[str, int, int], int | None] = {}  # (path, size, mtime_ns) -> step: read once


def metadata_step(path: Path) -> int | None:
    """The step stored in a PyTorch zip checkpoint's top-level dict, read from its pickle opcodes
    without running them; None for another format, or when it stores none. Remembered per file
    version, so a list refreshed every few seconds opens each checkpoint once."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _METADATA_STEPS:
        if len(_METADATA_STEPS) > 10_000:
            _METADATA_STEPS.clear()
        _METADATA_STEPS[key] = _read_metadata_step(path)
    return _METADATA_STEPS[key]


def _read_metadata_step(path: Path) -> int | None:
    try:
        with zipfile.ZipFile(path) as archive:
            member = next((n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if member is None or archive.getinfo(member).file_size > MAX_PICKLE_BYTES:
                return None
            data = archive.read(member)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return None
    top = _top_level_numbers(data)
    return next((top[key] for key in STEP_KEYS if isinstance(top.get(key), int) and top[key] >= 0), None)


_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
_INTS = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG"}


def _top_level_numbers(data: bytes) -> dict[str, int]:
    """The str -> int items of the dict a pickle builds at its top, found by running its opcodes on a
    stack of stand-ins (dicts of plain values, strings, ints, None for anything else): no object of the
    pickle is ever made, no global looked up, no callable called."""
    import pickletools

    mark = object()
    stack: list[object] = []
    memo: dict[object, object] = {}
    try:
        for opcode, argument, _ in pickletools.genops(data):
            name = opcode.name
            if name == "STOP":
                break
            if name == "MARK":
                stack.append(mark)
            elif name in _STRINGS:
                stack.append(argument if isinstance(argument, str) else None)
            elif name in _INTS:
                stack.append(int(argument) if isinstance(argument, int) else None)
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[argument] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                stack.append(memo.get(argument))
            elif name == "SETITEM":
                value, key = stack.pop(), stack.pop()
                _set(stack[-1], key, value)
            elif name in ("SETITEMS", "DICT"):
                at = len(stack) - 1 - stack[::-1].index(mark)
                items = stack[at + 1:]
                del stack[at:]
                if name == "DICT":
                    stack.append({})
                for key, value in zip(items[0::2], items[1::2]):
                    _set(stack[-1], key, value)
            else:  # anything else: take what it takes, leave a stand-in for what it leaves
                before = opcode.stack_before
                if pickletools.markobject in before:
                    del stack[len(stack) - 1 - stack[::-1].index(mark):]
                    before = before[:before.index(pickletools.markobject)]
                if before:
                    del stack[len(stack) - len(before):]
                stack.extend([None] * len(opcode.stack_after))
    except (ValueError, EOFError, IndexError, TypeError, KeyError):
        return {}
    top = stack[-1] if stack else None
    return {k: v for k, v in top.items() if isinstance(v, int)} if isinstance(top, dict) else {}


def _set(target: object, key: object, value: object) -> None:
    if isinstance(target, dict) and isinstance(key, str) and isinstance(value, (int, str)) \
            and not isinstance(value, bool):
        target[key] = value


def find_checkpoints(folders: list[Path], matches: Callable[[str], bool],
                     step_at_time: Callable[[float], int | None] | None = None,
                     prefer: Callable[[Path], int] | None = None, use_metadata: bool = True) -> list[CheckpointFile]:
    """The checkpoint files in `folders` whose names `matches`, oldest step first, one per step.

    A file's step: from its name, else its metadata (unless `use_metadata` is False: RVC stores the
    epoch as `iteration`), else `step_at_time(mtime)` (the logged step
    at the time it was written); a file with none of the three is left out. Temp and hidden files
    never count. Where two files share a step, `prefer` (higher wins) chooses, else the newer file.
    """
    by_step: dict[int, tuple[int, float, CheckpointFile]] = {}
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith(".") or not name.endswith(CHECKPOINT_SUFFIXES) or not matches(name):
                continue
            try:
                stat = entry.stat()
            except OSError:
                continue
            if not entry.is_file():
                continue
            path = Path(entry.path)
            step = named_step(name).step
            if step is None and use_metadata:
                step = metadata_step(path)
            if step is None and step_at_time is not None:
                step = step_at_time(stat.st_mtime)
            if step is None:
                continue
            found = CheckpointFile(step, path, stat.st_mtime, stat.st_size)
            rank = prefer(path) if prefer is not None else 0
            held = by_step.get(step)
            if held is None or (rank, stat.st_mtime) > (held[0], held[1]):
                by_step[step] = (rank, stat.st_mtime, found)
    return [by_step[step][2] for step in sorted(by_step)]
