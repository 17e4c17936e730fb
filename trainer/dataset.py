"""LJSpeech-format datasets: reading, validation report and size info (no torch).

A dataset is a folder with `metadata.csv` (`id|text` or `id|raw|normalized`, UTF-8)
and `wavs/<id>.wav`. `scan` reads it once and yields both the problems (each with
file and line) and the info (clips, durations, rates, words, alphabet); the result is
cached in the dataset folder keyed on each file's size, mtime and inode, so a second look is
instant and any changed, replaced or copied file invalidates it. Nothing read back from the
cache is trusted to name a file: its clip ids are checked as metadata.csv's are, and a cache
that does not hold up is rebuilt.

Only regular files are opened (`trainer.rundir.files`): a FIFO named `x.wav` is a problem to
report, never a read that waits forever.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from trainer.rundir.files import open_regular, read_regular_bytes, regular_file_problem
from trainer.text import MAX_SPOKEN_DIGITS, Language, describe_character, get_language, long_numbers

CACHE_VERSION = 3  # 3: inodes in the fingerprint, STFT size in the key, short/non-finite/long clips checked
METADATA = "metadata.csv"
WAVS = "wavs"
SMALL_DATASET_S = 30 * 60  # voice tools warn below about half an hour of speech
MAX_UNKNOWN_PER_LINE = 5  # more unknown characters on one line are reported as one problem
#: A clip this many times longer than the median (and at least LONG_CLIP_MIN_S) is warned about:
#: every batch it lands in is padded to its length.
LONG_CLIP_FACTOR = 4.0
LONG_CLIP_MIN_S = 15.0
#: First-field words of a header row (`id|text`, `file_name|transcription`, ...).
HEADER_IDS = frozenset({"id", "ids", "file", "filename", "file_name", "name", "path", "audio", "audio_file",
                        "wav", "wav_file", "clip", "clip_id", "utterance", "utt", "utt_id", "key"})


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


def clip_id_problem(clip_id: str) -> str | None:
    """Why `clip_id` cannot name a clip, or None: it must be a plain file name inside wavs/.

    The one rule for ids, whether they come from metadata.csv or from a cache: no path
    separator, no leading dot (no `..`, no hidden file), no NUL, short enough for a file name.
    """
    if "/" in clip_id or "\\" in clip_id or clip_id.startswith(".") or "\x00" in clip_id:
        return f"id {clip_id!r} must be a plain file name inside {WAVS}/ (no '/', no leading '.')"
    if len(f"{clip_id}.wav".encode("utf-8", "surrogatepass")) > 255:
        return f"id {clip_id[:40]!r}... is too long for a file name (at most 251 bytes)"
    return None


def _read_metadata(folder: Path, language: Language, problems: list[Problem]) -> list[Clip]:
    """Parse metadata.csv line by line, reporting every malformed, empty, duplicate or unknown."""
    try:
        raw = read_regular_bytes(folder / METADATA)
    except FileNotFoundError:
        problems.append(Problem(METADATA, None, f"missing: {folder} has no {METADATA} "
                                "(expected lines like `id|text`)", code="no_metadata"))
        return []
    except OSError as exc:
        reason = regular_file_problem(folder / METADATA) or f"cannot be read: {exc.strerror or exc}"
        problems.append(Problem(METADATA, None, reason if reason.startswith("cannot") else f"cannot be read: {reason}",
                                code="unreadable_metadata"))
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
        bad_id = clip_id_problem(clip_id)
        if bad_id is not None:
            problems.append(Problem(METADATA, number, bad_id, code="bad_id"))
            continue
        if number == 1 and _looks_like_header(folder, clip_id, text):
            problems.append(Problem(METADATA, number, f"line 1 is a header row ({line.strip()[:60]!r}), not a "
                                    "clip; LJSpeech metadata.csv has no header: delete the line", code="header_row"))
            continue
        if clip_id in first_line_of:
            problems.append(Problem(METADATA, number, f"duplicate id {clip_id!r} "
                                    f"(first at line {first_line_of[clip_id]})", code="duplicate_id"))
            continue
        first_line_of[clip_id] = number
        if not text:
            problems.append(Problem(METADATA, number, f"empty text for {clip_id!r}", code="empty_text"))
            continue
        too_long = long_numbers(text)
        if too_long:
            problems.append(Problem(METADATA, number, f"a number of {len(too_long[0])} digits at line {number} is "
                                    f"too long to say (more than {MAX_SPOKEN_DIGITS} digits); write it in words "
                                    "or drop the line", code="long_number"))
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


def _looks_like_header(folder: Path, clip_id: str, text: str) -> bool:
    """Whether line 1 (`id|text`) names its columns instead of a clip: a column word with no such wav."""
    return (clip_id.lower() in HEADER_IDS and len(text.split()) <= 3
            and not (folder / WAVS / f"{clip_id}.wav").exists())


def _check_audio(folder: Path, clip: Clip, sample_rate: int, resample: bool, n_fft: int,
                 problems: list[Problem], rates: Counter[int]) -> float | None:
    """The clip's duration in seconds, or None after reporting why it cannot be used."""
    import soundfile

    wav_path = folder / clip.wav
    not_regular = regular_file_problem(wav_path)
    if not_regular == "missing":
        problems.append(Problem(METADATA, clip.line, f"{clip.wav} is listed but does not exist",
                                code="missing_wav"))
        return None
    if not_regular is not None:
        problems.append(Problem(clip.wav, None, f"cannot be used as audio: {not_regular}; listed at line "
                                f"{clip.line}", code="not_a_file"))
        return None
    try:
        with open_regular(wav_path) as handle:
            audio = soundfile.info(handle)
            samples = _float_samples(soundfile, handle, audio)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:  # LibsndfileError is a RuntimeError
        reason = regular_file_problem(wav_path) or str(exc).split(":")[-1].strip() or "unknown format"
        problems.append(Problem(clip.wav, None, f"unreadable or corrupt audio ({reason}); "
                                f"listed at line {clip.line}", code="corrupt_audio"))
        return None
    rates[audio.samplerate] += 1
    if audio.frames <= 0:
        problems.append(Problem(clip.wav, None, f"empty audio (0 samples); listed at line {clip.line}",
                                code="empty_audio"))
        return None
    if samples is not None and not samples:
        problems.append(Problem(clip.wav, None, "holds samples that are not numbers (NaN or infinite); "
                                f"re-export it (listed at line {clip.line})", code="non_finite_audio"))
        return None
    at_rate = audio.frames * sample_rate / audio.samplerate if audio.samplerate > 0 else 0
    if at_rate < n_fft:
        problems.append(Problem(clip.wav, None, f"too short: {audio.frames} samples, less than one STFT frame "
                                f"({n_fft} samples at {sample_rate} Hz); listed at line {clip.line}",
                                code="too_short"))
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


def _float_samples(soundfile: object, handle: object, audio: object) -> bool | None:
    """For float wavs, whether every sample is finite (None for integer PCM, which always is).

    Read in blocks, so a long clip costs no more memory than a block.
    """
    if getattr(audio, "subtype", "") not in ("FLOAT", "DOUBLE"):
        return None
    import numpy as np

    handle.seek(0)  # type: ignore[attr-defined]
    for block in soundfile.blocks(handle, blocksize=1 << 16, dtype="float32"):  # type: ignore[attr-defined]
        if not np.isfinite(block).all():
            return False
    return True


def fingerprint(folder: Path) -> str:
    """A digest of metadata.csv's and every wav's name, size, mtime and inode: changes when any file does.

    The inode makes a copy (`cp -a`, rsync and tar keep mtimes) or a file replaced by another with
    the same size and time count as changed.
    """
    digest = hashlib.sha1()
    for sub in (folder / METADATA,):
        try:
            stat = sub.stat()
            digest.update(f"{sub.name}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}\n".encode())
        except OSError:
            digest.update(b"-\n")
    try:
        entries = sorted(os.scandir(folder / WAVS), key=lambda e: e.name)
    except OSError:  # none, not a folder, unreadable: scan reports it
        entries = []
    for entry in entries:
        try:
            stat = entry.stat()
        except OSError:  # gone, a symlink loop, unreadable: scan reports it
            continue
        digest.update(f"{entry.name}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}\n".encode())
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
         progress: Callable[[int, int], None] | None = None, use_cache: bool = True, n_fft: int = 1024) -> Report:
    """Validate a dataset and measure it; cached per (files, language, rate, resample, STFT size)."""
    folder = Path(path)
    lang = get_language(language)
    report = Report(str(folder))
    if not folder.is_dir():
        reason = regular_file_problem(folder)
        shown = "is not a folder" if reason in (None, "missing") or reason.startswith("not a regular") else reason
        report.problems.append(Problem(str(folder), None, shown, code="not_a_folder"))
        return report
    key = {"version": CACHE_VERSION, "fingerprint": fingerprint(folder), "language": language,
           "sample_rate": sample_rate, "resample": resample, "n_fft": n_fft}
    cache_file = _cache_path(folder)
    if use_cache:
        cached = _read_cache(cache_file, key, folder)
        if cached is not None:
            return cached
    clips = _read_metadata(folder, lang, report.problems)
    if not (folder / WAVS).is_dir():
        report.problems.append(Problem(WAVS + "/", None, f"missing: {folder} has no {WAVS}/ folder",
                                       code="no_wavs_folder"))
        clips = []
    elif not os.access(folder / WAVS, os.R_OK | os.X_OK):
        report.problems.append(Problem(WAVS + "/", None, f"cannot be read: permission denied on {folder / WAVS}",
                                       code="unreadable_wavs_folder"))
        clips = []
    rates: Counter[int] = Counter()
    for done, clip in enumerate(clips, 1):
        duration = _check_audio(folder, clip, sample_rate, resample, n_fft, report.problems, rates)
        if duration is not None:
            report.clips.append(Clip(clip.id, clip.text, clip.wav, clip.line, duration))
        if progress and (done % 50 == 0 or done == len(clips)):
            progress(done, len(clips))
    report.problems.extend(_long_clips(report.clips))
    report.problems.sort(key=lambda p: (p.line or 0, p.file))
    report.info = _summarise(report.clips, lang, rates)
    if report.info["clips"] and report.info["small"]:
        minutes = report.info["total_s"] / 60
        report.problems.append(Problem(str(folder), None, f"only {minutes:.1f} minutes of audio; "
                                       "voices usually need at least 30 minutes, ideally hours",
                                       "warning", code="small"))
    _write_cache(cache_file, key, report)
    return report


def _long_clips(clips: list[Clip]) -> list[Problem]:
    """Warnings for clips far longer than the rest: every batch one lands in is padded to its length."""
    if len(clips) < 3:
        return []
    median = statistics.median(c.duration_s for c in clips)
    limit = max(LONG_CLIP_MIN_S, LONG_CLIP_FACTOR * median)
    return [Problem(c.wav, None, f"{c.duration_s:.1f} s long, {c.duration_s / median:.0f} times the median clip "
                    f"({median:.1f} s): every batch it is in is padded to its length, which costs memory and "
                    f"time; split or drop it (listed at line {c.line})", "warning", code="long_clip")
            for c in clips if c.duration_s > limit]


def _read_cache(cache_file: Path, key: dict[str, Any], folder: Path) -> Report | None:
    """The cached report when it matches `key` and holds up: ids and wav paths pass the same rule as
    metadata.csv's, every field has its type; None (scan again) otherwise."""
    try:
        data = json.loads(read_regular_bytes(cache_file).decode("utf-8"))
        if data.get("key") != key:
            return None
        clips = [Clip(**c) for c in data["clips"]]
        problems = [Problem(**p) for p in data["problems"]]
        info = data["info"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):  # a damaged cache
        return None
    if not isinstance(info, dict) or not all(_clip_holds_up(c) for c in clips) or not all(
            isinstance(p.file, str) and isinstance(p.message, str) and isinstance(p.line, (int, type(None)))
            for p in problems):
        return None
    return Report(str(folder), problems, clips, info)


def _clip_holds_up(clip: Clip) -> bool:
    """Whether a clip read back from a cache is one metadata.csv could have given: a plain id,
    its wav at `wavs/<id>.wav`, text, a line number and a finite duration."""
    return (isinstance(clip.id, str) and clip_id_problem(clip.id) is None and bool(clip.id)
            and clip.wav == f"{WAVS}/{clip.id}.wav" and isinstance(clip.text, str)
            and isinstance(clip.line, int) and isinstance(clip.duration_s, (int, float))
            and math.isfinite(clip.duration_s) and clip.duration_s >= 0)


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
               resample: bool = False, n_fft: int = 1024) -> list[Clip]:
    """The usable clips of a valid dataset; DatasetError listing the problems otherwise."""
    report = scan(path, language, sample_rate, resample, n_fft=n_fft)
    if not report.valid:
        raise DatasetError(report)
    return report.clips


def list_datasets(root: str | Path) -> list[Path]:
    """Sub-folders of `root` that look like datasets (have metadata.csv or wavs/), by name."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name.lower())
    except FileNotFoundError:  # none yet; a file in its place or no permission is the caller's to say
        return []
    return [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")
            and (os.path.exists(os.path.join(e.path, METADATA)) or os.path.isdir(os.path.join(e.path, WAVS)))]


def format_duration(seconds: float) -> str:
    """h:mm:ss, the way voice tools show dataset size."""
    from trainer.rundir.names import hms

    return hms(seconds)
