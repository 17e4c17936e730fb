"""LJSpeech-format datasets: reading, validation report and size info (no torch).

A dataset is a folder with `metadata.csv` (`id|text` or `id|raw|normalized`, UTF-8)
and `wavs/<id>.wav`. `scan` reads it once and yields both the problems (each with
file and line) and the info (clips, durations, rates, words, alphabet); the result is
cached in the dataset folder keyed on file sizes and mtimes, so a second look is instant
and any changed file invalidates it.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from trainer.text import Language, describe_character, get_language

CACHE_VERSION = 2
METADATA = "metadata.csv"
WAVS = "wavs"
SMALL_DATASET_S = 30 * 60  # voice tools warn below about half an hour of speech
MAX_UNKNOWN_PER_LINE = 5  # more unknown characters on one line are reported as one problem


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset, located by file and line."""

    file: str
    line: int | None
    message: str
    severity: str = "error"
    code: str = ""
    """The kind of problem (`malformed`, `missing_wav`, ...): reports group and cap by it."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"


@dataclass(frozen=True)
class Clip:
    """One usable line of metadata.csv."""

    id: str
    text: str
    wav: str
    line: int
    duration_s: float = 0.0


@dataclass
class Report:
    """What `scan` found: problems, the usable clips, and the dataset's size figures."""

    path: str
    problems: list[Problem] = field(default_factory=list)
    clips: list[Clip] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "valid": self.valid,
                "problems": [asdict(p) for p in self.problems], "info": self.info}


class DatasetError(ValueError):
    """A dataset that cannot be trained on; carries the report."""

    def __init__(self, report: Report, limit: int = 20):
        self.report = report
        lines = [str(p) for p in report.errors[:limit]]
        if len(report.errors) > limit:
            lines.append(f"... and {len(report.errors) - limit} more (voxtop dataset check {report.path})")
        super().__init__(f"dataset {report.path} is not valid:\n" + "\n".join(lines))


def _read_metadata(folder: Path, language: Language, problems: list[Problem]) -> list[Clip]:
    """Parse metadata.csv line by line, reporting every malformed, empty, duplicate or unknown."""
    try:
        raw = (folder / METADATA).read_bytes()
    except FileNotFoundError:
        problems.append(Problem(METADATA, None, f"missing: {folder} has no {METADATA} "
                                "(expected lines like `id|text`)", code="no_metadata"))
        return []
    except OSError as exc:
        problems.append(Problem(METADATA, None, f"cannot be read: {exc.strerror}", code="unreadable_metadata"))
        return []
    clips: list[Clip] = []
    first_line_of: dict[str, int] = {}
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    for number, line_bytes in enumerate(raw.split(b"\n"), 1):
        line_bytes = line_bytes.rstrip(b"\r")
        if not line_bytes.strip():
            continue
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(METADATA, number, f"not UTF-8 (byte 0x{line_bytes[exc.start]:02x} "
                                    f"at column {exc.start + 1}); save the file as UTF-8", code="not_utf8"))
            continue
        fields = line.split("|")
        if len(fields) not in (2, 3):
            shown = line if len(line) <= 60 else line[:57] + "..."
            problems.append(Problem(METADATA, number, f"malformed: expected `id|text` or "
                                    f"`id|raw|normalized`, found {len(fields)} field(s): {shown!r}",
                                    code="malformed"))
            continue
        clip_id = fields[0].strip()
        if clip_id.lower().endswith(".wav"):
            clip_id = clip_id[:-4]
        text = (fields[2] if len(fields) == 3 and fields[2].strip() else fields[1]).strip()
        if not clip_id:
            problems.append(Problem(METADATA, number, "malformed: the id (first field) is empty",
                                    code="empty_id"))
            continue
        if "/" in clip_id or "\\" in clip_id or clip_id.startswith("."):
            problems.append(Problem(METADATA, number, f"id {clip_id!r} must be a plain file name "
                                    f"inside {WAVS}/ (no '/', no leading '.')", code="bad_id"))
            continue
        if clip_id in first_line_of:
            problems.append(Problem(METADATA, number, f"duplicate id {clip_id!r} "
                                    f"(first at line {first_line_of[clip_id]})", code="duplicate_id"))
            continue
        first_line_of[clip_id] = number
        if not text:
            problems.append(Problem(METADATA, number, f"empty text for {clip_id!r}", code="empty_text"))
            continue
        unknown = {ch for _, ch in language.unknown_characters(text)}
        if len(unknown) > MAX_UNKNOWN_PER_LINE:  # a binary or wrongly decoded line: one problem, not thousands
            shown = ", ".join(describe_character(ch) for ch in sorted(unknown)[:3])
            problems.append(Problem(METADATA, number, f"{len(unknown)} different characters at line {number} "
                                    f"are not in the {language.name} alphabet ({shown}, ...); is the "
                                    "file in this language and UTF-8?", code="unknown_character"))
            continue
        if unknown:
            for ch in sorted(unknown):
                problems.append(Problem(METADATA, number, f"{describe_character(ch)} at line {number} "
                                        f"is not in the {language.name} alphabet; fix the text "
                                        "or pick another data.language", code="unknown_character"))
            continue
        clips.append(Clip(clip_id, text, f"{WAVS}/{clip_id}.wav", number))
    if not clips and not problems:
        problems.append(Problem(METADATA, None, "has no clips", code="no_clips"))
    return clips


def _check_audio(folder: Path, clip: Clip, sample_rate: int, resample: bool,
                 problems: list[Problem], rates: Counter[int]) -> float | None:
    """The clip's duration in seconds, or None after reporting why it cannot be used."""
    import soundfile

    wav_path = folder / clip.wav
    try:
        audio = soundfile.info(str(wav_path))
    except FileNotFoundError:
        problems.append(Problem(METADATA, clip.line, f"{clip.wav} is listed but does not exist",
                                code="missing_wav"))
        return None
    except (RuntimeError, OSError, ValueError) as exc:  # soundfile raises LibsndfileError(RuntimeError)
        if not wav_path.exists():
            problems.append(Problem(METADATA, clip.line, f"{clip.wav} is listed but does not exist",
                                    code="missing_wav"))
        else:
            reason = str(exc).split(":")[-1].strip() or "unknown format"
            problems.append(Problem(clip.wav, None, f"unreadable or corrupt audio ({reason}); "
                                    f"listed at line {clip.line}", code="corrupt_audio"))
        return None
    rates[audio.samplerate] += 1
    if audio.frames <= 0:
        problems.append(Problem(clip.wav, None, f"empty audio (0 samples); listed at line {clip.line}",
                                code="empty_audio"))
        return None
    usable = True
    if audio.samplerate != sample_rate and not resample:
        problems.append(Problem(clip.wav, None, f"sample rate is {audio.samplerate} Hz, expected "
                                f"{sample_rate} Hz; resample it or set data.resample = true "
                                f"(listed at line {clip.line})", code="sample_rate"))
        usable = False
    if audio.channels != 1 and not resample:
        problems.append(Problem(clip.wav, None, f"has {audio.channels} channels, expected 1 (mono); "
                                "mix it down or set data.resample = true "
                                f"(listed at line {clip.line})", code="channels"))
        usable = False
    return audio.frames / audio.samplerate if usable else None


def fingerprint(folder: Path) -> str:
    """A digest of metadata.csv's and every wav's name, size and mtime: changes when any file does."""
    digest = hashlib.sha1()
    for sub in (folder / METADATA,):
        try:
            stat = sub.stat()
            digest.update(f"{sub.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        except FileNotFoundError:
            digest.update(b"-\n")
    try:
        entries = sorted(os.scandir(folder / WAVS), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        entries = []
    for entry in entries:
        try:
            stat = entry.stat()
        except FileNotFoundError:
            continue
        digest.update(f"{entry.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _summarise(clips: list[Clip], language: Language, rates: Counter[int]) -> dict[str, Any]:
    durations = [c.duration_s for c in clips]
    symbols_used = Counter(ch for c in clips for ch in language.clean(c.text))
    total = sum(durations)
    return {
        "clips": len(clips),
        "total_s": round(total, 3),
        "mean_s": round(statistics.fmean(durations), 3) if durations else 0.0,
        "min_s": round(min(durations), 3) if durations else 0.0,
        "max_s": round(max(durations), 3) if durations else 0.0,
        "sample_rates": {str(rate): n for rate, n in sorted(rates.items())},
        "words": sum(len(c.text.split()) for c in clips),
        "alphabet": "".join(sorted(symbols_used)),
        "language": language.code,
        "small": total < SMALL_DATASET_S,
    }


def _cache_path(folder: Path) -> Path:
    """`<dataset>/.voxtop/info.json`, or a per-user cache when the dataset is read-only."""
    local = folder / ".voxtop"
    if os.access(folder, os.W_OK):
        return local / "info.json"
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voxtop" / "datasets"
    return home / (hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16] + ".json")


def scan(path: str | Path, language: str = "en", sample_rate: int = 22050, resample: bool = False,
         progress: Callable[[int, int], None] | None = None, use_cache: bool = True) -> Report:
    """Validate a dataset and measure it; cached per (files, language, rate, resample)."""
    folder = Path(path)
    lang = get_language(language)
    report = Report(str(folder))
    if not folder.is_dir():
        report.problems.append(Problem(str(folder), None, "is not a folder", code="not_a_folder"))
        return report
    key = {"version": CACHE_VERSION, "fingerprint": fingerprint(folder), "language": language,
           "sample_rate": sample_rate, "resample": resample}
    cache_file = _cache_path(folder)
    if use_cache:
        cached = _read_cache(cache_file, key)
        if cached is not None:
            return cached
    clips = _read_metadata(folder, lang, report.problems)
    if not (folder / WAVS).is_dir():
        report.problems.append(Problem(WAVS + "/", None, f"missing: {folder} has no {WAVS}/ folder",
                                       code="no_wavs_folder"))
        clips = []
    rates: Counter[int] = Counter()
    for done, clip in enumerate(clips, 1):
        duration = _check_audio(folder, clip, sample_rate, resample, report.problems, rates)
        if duration is not None:
            report.clips.append(Clip(clip.id, clip.text, clip.wav, clip.line, duration))
        if progress and (done % 50 == 0 or done == len(clips)):
            progress(done, len(clips))
    report.problems.sort(key=lambda p: (p.line or 0, p.file))
    report.info = _summarise(report.clips, lang, rates)
    if report.info["clips"] and report.info["small"]:
        minutes = report.info["total_s"] / 60
        report.problems.append(Problem(str(folder), None, f"only {minutes:.1f} minutes of audio; "
                                       "voices usually need at least 30 minutes, ideally hours",
                                       "warning", code="small"))
    _write_cache(cache_file, key, report)
    return report


def _read_cache(cache_file: Path, key: dict[str, Any]) -> Report | None:
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        return Report(data["path"], [Problem(**p) for p in data["problems"]],
                      [Clip(**c) for c in data["clips"]], data["info"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):  # a damaged cache
        return None


def _write_cache(cache_file: Path, key: dict[str, Any], report: Report) -> None:
    from trainer.rundir import atomic_write_json

    data = {"key": key, "path": report.path, "problems": [asdict(p) for p in report.problems],
            "clips": [asdict(c) for c in report.clips], "info": report.info}
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cache_file, data)
    except OSError:
        pass  # a cache we cannot write only costs the next look a rescan


def load_clips(path: str | Path, language: str = "en", sample_rate: int = 22050,
               resample: bool = False) -> list[Clip]:
    """The usable clips of a valid dataset; DatasetError listing the problems otherwise."""
    report = scan(path, language, sample_rate, resample)
    if not report.valid:
        raise DatasetError(report)
    return report.clips


def list_datasets(root: str | Path) -> list[Path]:
    """Sub-folders of `root` that look like datasets (have metadata.csv or wavs/), by name."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name.lower())
    except FileNotFoundError:
        return []
    return [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")
            and (os.path.exists(os.path.join(e.path, METADATA)) or os.path.isdir(os.path.join(e.path, WAVS)))]


def format_duration(seconds: float) -> str:
    """h:mm:ss, the way voice tools show dataset size."""
    total = int(round(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"
