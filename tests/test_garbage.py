"""Garbage in (hypothesis): configs, datasets and metrics files of any shape give clear errors, fast.

Never a traceback, never a hang: the config loader raises only ConfigError naming a key,
the dataset validator reports problems with file and line, and the metrics readers count
and skip what they cannot parse.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import ROOT, make_dataset
from trainer import config as cfg
from trainer.dataset import scan
from trainer.rundir import MetricsReader, MetricsWriter

SCRATCH = Path(tempfile.mkdtemp(prefix="voxtop-garbage-"))
FAST = settings(max_examples=120, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

# --- config -----------------------------------------------------------------------------

SCHEMA = {info.section: [] for info in cfg.schema()}
for _info in cfg.schema():
    SCHEMA[_info.section].append(_info.name)

scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**4000), max_value=10**4000),  # huge, still valid TOML
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.just("~nosuchuser/x"), st.just("a\x00b"), st.just("../" * 50),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
section_names = st.one_of(st.sampled_from(sorted(SCHEMA)), st.text(min_size=1, max_size=12))


@st.composite
def config_documents(draw: st.DrawFn) -> dict:
    document = {}
    for section in draw(st.lists(section_names, max_size=4, unique=True)):
        known = SCHEMA.get(section, [])
        names = st.one_of(st.sampled_from(known), st.text(min_size=1, max_size=12)) if known else st.text(
            min_size=1, max_size=12)
        document[section] = draw(st.dictionaries(names, values, max_size=5))
    if draw(st.booleans()):
        document[draw(st.text(min_size=1, max_size=8))] = draw(scalars)  # a top-level key
    return document


def load_text(text: str | bytes) -> cfg.Config | None:
    """Load a config file of this content; ConfigError is the only error allowed through."""
    path = SCRATCH / "config.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        return cfg.load(path)
    except cfg.ConfigError as exc:
        assert type(exc) is cfg.ConfigError
        assert exc.problems and all(p.key for p in exc.problems)
        assert all(f"{p.key}: " in str(exc) for p in exc.problems)  # every problem names its key
        assert len(str(exc)) < 2000 * len(exc.problems)  # a huge value is cut short in the message
        return None


@FAST
@given(config_documents())
def test_any_toml_document_loads_or_names_the_key(document: dict) -> None:
    import tomli_w

    try:
        text = tomli_w.dumps(document)
    except (TypeError, ValueError):
        return  # not representable as TOML (e.g. a lone surrogate); nothing to load
    start = time.perf_counter()
    load_text(text)
    assert time.perf_counter() - start < 1.0


@FAST
@given(config_documents(), st.integers(min_value=10**4300, max_value=10**6000))
def test_any_parsed_document_validates_or_names_the_key(document: dict, enormous: int) -> None:
    """`from_dict` (the Parameters screen's path, no TOML parser in front): even numbers too long to print."""
    document.setdefault("train", {})["epochs"] = enormous
    document["train"]["learning_rate"] = enormous
    with pytest.raises(cfg.ConfigError) as failed:
        cfg.from_dict(document, base_dir=SCRATCH)
    assert type(failed.value) is cfg.ConfigError
    assert "train.epochs: a number too long to show" in str(failed.value)
    assert "train.learning_rate: a number too long to show is too large" in str(failed.value)


@FAST
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400)))
@example(b"x = " + b"[" * 5000 + b"]" * 5000)  # nested deeper than the recursion limit
@example(b"[train]\nepochs = " + b"9" * 5000)  # more digits than Python converts
@example(b"[data]\ndataset = \"\\u0000\"")
@example(b"[data]\ndataset = \"~nobody-at-all/x\"")
@example(b"[train]\nlearning_rate = 1" + b"0" * 400 + b".0")
@example(b"\xff\xfe[train]")
def test_any_bytes_load_or_give_a_config_error(data: bytes | str) -> None:
    load_text(data)


@FAST
@given(st.sampled_from(sorted(info.key for info in cfg.schema())), values)
def test_overrides_of_any_value_load_or_name_the_key(key: str, value: object) -> None:
    import tomli_w

    try:
        rendered = tomli_w.dumps({"v": value}).split("=", 1)[1].strip()
    except (TypeError, ValueError, IndexError):
        return
    path = SCRATCH / "base.toml"
    path.write_text("")
    try:
        cfg.load(path, [f"{key}={rendered}"])
    except cfg.ConfigError as exc:
        assert type(exc) is cfg.ConfigError and key in str(exc)


# --- dataset validator ------------------------------------------------------------------


def one_clip_dataset(name: str, wav: bytes, metadata: bytes = b"a|Hello there.\n") -> Path:
    root = SCRATCH / name
    (root / "wavs").mkdir(parents=True, exist_ok=True)
    (root / "metadata.csv").write_bytes(metadata)
    (root / "wavs" / "a.wav").write_bytes(wav)
    return root


def real_wav(seconds: float = 0.2) -> bytes:
    buffer = io.BytesIO()
    t = np.arange(int(22050 * seconds)) / 22050
    soundfile.write(buffer, 0.3 * np.sin(2 * np.pi * 220 * t), 22050, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


REAL_WAV = real_wav()


def assert_readable(report) -> None:
    """Every problem is located and short enough to read."""
    for problem in report.problems:
        assert problem.file and problem.code and len(problem.message) < 400, problem


@FAST
@given(st.binary(max_size=2000))
@example(b"RIFF\xff\xff\xff\x7fWAVEfmt ")
@example(b"")
def test_random_bytes_as_a_wav_are_a_problem_not_a_crash(wav: bytes) -> None:
    report = scan(one_clip_dataset("random-wav", wav), use_cache=False)
    assert_readable(report)
    assert not report.valid or report.clips


@FAST
@given(st.integers(min_value=0, max_value=len(REAL_WAV) - 1))
def test_truncated_wavs_are_a_problem_or_a_shorter_clip(cut: int) -> None:
    report = scan(one_clip_dataset("truncated-wav", REAL_WAV[:cut]), use_cache=False)
    assert_readable(report)
    if report.valid:
        assert 0 < report.clips[0].duration_s <= 0.2
    else:
        assert report.errors[0].code in ("corrupt_audio", "empty_audio", "too_short")  # < one STFT frame


@FAST
@given(st.binary(max_size=3000))
@example(b"a|" + b"\x00" * 100)
@example(b"\xef\xbb\xbfa|Hello\r\n|\n||\n.a|x\n../a|x\n")
def test_random_metadata_is_reported_line_by_line(metadata: bytes) -> None:
    report = scan(one_clip_dataset("random-metadata", REAL_WAV, metadata), use_cache=False)
    assert_readable(report)
    lines = metadata.count(b"\n") + 1
    assert all(p.line is None or 1 <= p.line <= lines for p in report.problems)


@pytest.mark.parametrize("cache", [b"[]", b"null", b"[" * 100_000, b'{"key": 1}', b"\xff", b'{"key": {}, "path": 3}'],
                         ids=["list", "null", "nested", "wrong-key", "not-utf8", "wrong-path"])
def test_a_damaged_validation_cache_is_ignored(tmp_path: Path, cache: bytes) -> None:
    root = make_dataset(tmp_path / "ds", ["a|Hello there."])
    assert scan(root).valid
    (root / ".voxtop" / "info.json").write_bytes(cache)
    report = scan(root)
    assert report.valid and [c.id for c in report.clips] == ["a"]


def test_enormous_metadata_lines_are_reported_briefly(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    foreign = "".join(chr(c) for c in rng.integers(0x400, 0x3000, 2**18))  # 256k characters, ~0.75 MB
    lines = [b"a|" + b"word " * 200_000,                  # 1 MB of fine text: a clip
             b"b|" + bytes(rng.integers(128, 256, 2**20, dtype=np.uint8)),  # 1 MB, not UTF-8
             b"c|" + foreign.encode(),
             b"d" * 2**20]                                  # 1 MB, one field
    root = make_dataset(tmp_path / "huge", ["a|x"])
    (root / "metadata.csv").write_bytes(b"\n".join(lines) + b"\n")
    start = time.perf_counter()
    report = scan(root, use_cache=False)
    assert time.perf_counter() - start < 10
    assert_readable(report)
    assert [p.line for p in report.errors] == [2, 3, 4]  # c: one problem, not thousands
    assert [c.id for c in report.clips] == ["a"]


def test_five_thousand_broken_lines_are_fast_and_summarised(tmp_path: Path) -> None:
    kinds = [lambda i: f"only-one-field-{i}", lambda i: f"m{i}|no wav for this one",
             lambda i: f"x{i}|Ünïcödé ☃ ✓ λ", lambda i: "dup|the same id", lambda i: f"|empty id {i}"]
    lines = [kinds[i % len(kinds)](i) for i in range(5000)]
    root = make_dataset(tmp_path / "broken", ["dup|x"], {})
    (root / "metadata.csv").write_text("dup|first\n" + "\n".join(lines) + "\n", encoding="utf-8")
    start = time.perf_counter()
    report = scan(root, use_cache=False)
    assert time.perf_counter() - start < 3.0
    assert len(report.errors) >= 5000
    result = subprocess.run([sys.executable, "-m", "tui.cli", "dataset", "check", str(root), "--no-cache"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1
    output = result.stdout.splitlines()
    assert len(output) < 80, len(output)  # a screenful, not 5,000 lines
    assert any(line.startswith("... and 990 more malformed problem(s)") for line in output)
    assert output[-1].endswith(f"INVALID: {len(report.errors)} problem(s) in 0 usable clip(s)")
    as_json = json.loads(subprocess.run(
        [sys.executable, "-m", "tui.cli", "dataset", "check", str(root), "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120).stdout)
    assert len(as_json["problems"]) == len(report.problems)  # --json keeps every one


# --- metrics readers ----------------------------------------------------------------------

COLUMNS = {"train": ("loss", "attention_score"), "val": ("loss",)}


def read_in_chunks(path: Path, data: bytes, cuts: list[int]) -> tuple[list[dict], int]:
    """Append `data` in pieces, reading after each: (records, malformed) as a follower sees them."""
    path.write_bytes(b"")
    reader = MetricsReader(path)
    found = []
    previous = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        with open(path, "ab") as handle:
            handle.write(data[previous:cut])
        previous = max(previous, cut)
        found += reader.read_new()
    return found, reader.malformed


def numbers(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number


lines_of_junk = st.one_of(
    st.binary(max_size=120).map(lambda b: b.replace(b"\n", b" ")),
    st.sampled_from([b"\x00" * 50, b"[" * 3000, b'{"kind": "train", "step": 1, "loss": ' + b"[" * 3000,
                     b'{"t": 1, "kind": "train", "step": "x", "loss": null}', b"{}", b"[]", b"null",
                     b'{"t": 1.0, "kind": "train", "step": 3, "loss": NaN, "attention_score": 1e999}',
                     b'{"t": 1.0, "kind": "train", "step": 3, "loss": 0.5, "attention_score": 0.2, "x": 1}']),
)


@st.composite
def metrics_files(draw: st.DrawFn) -> bytes:
    """Lines as MetricsWriter writes them, mixed with junk lines, maybe ending mid-line."""
    path = SCRATCH / "writer.jsonl"
    path.write_bytes(b"")
    writer = MetricsWriter(path)
    for step in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["train", "val", "event", "train"]))
        fields = {"loss": draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(),
                                         st.integers(-10**20, 10**20))),
                  "attention_score": draw(st.floats(0, 1))} if kind != "event" else {"message": draw(st.text(max_size=20))}
        writer.write(kind, step, **fields)
    writer.close()
    lines = path.read_bytes().split(b"\n")[:-1]
    for _ in range(draw(st.integers(0, 6))):
        lines.insert(draw(st.integers(0, len(lines))), draw(lines_of_junk))
    data = b"\n".join(lines) + (b"\n" if lines else b"")
    return data + draw(st.sampled_from([b"", b'{"t": 1, "kind": "tr', b"\x00\xff"]))


@settings(max_examples=150, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(metrics_files(), st.lists(st.integers(0, 4000), max_size=5))
def test_metrics_readers_agree_on_any_file_read_in_any_pieces(data: bytes, cuts: list[int]) -> None:
    path = SCRATCH / "metrics.jsonl"
    path.write_bytes(data)
    whole = MetricsReader(path)
    expected = whole.read_new()
    pieces, malformed = read_in_chunks(path, data, [c for c in cuts if c < len(data)])
    assert pieces == expected or json.dumps(pieces) == json.dumps(expected)  # NaN != NaN
    assert malformed == whole.malformed

    columns = MetricsReader(path).read_new_columns(COLUMNS)
    for kind, names in COLUMNS.items():
        of_kind = [r for r in expected if r["kind"] == kind]
        assert len(columns.columns[kind]["line"]) == len(of_kind)
        for name in names:
            np.testing.assert_array_equal(columns.columns[kind][name],
                                          np.array([numbers(r.get(name)) for r in of_kind], dtype=np.float64))
    assert [r for r in columns.records] == [r for r in expected if r["kind"] not in COLUMNS] or json.dumps(
        columns.records) == json.dumps([r for r in expected if r["kind"] not in COLUMNS])


@pytest.mark.parametrize("line", [
    b"x" * 10 * 2**20,                                   # 10 MB of one letter
    b"[" * 10 * 2**20,                                   # 10 MB of nesting
    b'{"t": 1, "kind": "train", "step": 1, "loss": "' + b"\x00" * 10 * 2**20 + b'"}',
    bytes(np.random.default_rng(1).integers(0, 256, 10 * 2**20, dtype=np.uint8)).replace(b"\n", b" "),
], ids=["letters", "nesting", "nul-string", "random"])
def test_a_ten_megabyte_line_is_skipped_quickly(tmp_path: Path, line: bytes) -> None:
    path = tmp_path / "metrics.jsonl"
    good = b'{"t": 1.0, "kind": "train", "step": 1, "loss": 0.5, "attention_score": 0.1}\n'
    path.write_bytes(good + line + b"\n" + good.replace(b'"step": 1', b'"step": 2'))
    start = time.perf_counter()
    reader = MetricsReader(path)
    assert [r["step"] for r in reader.read_new()] == [1, 2] and reader.malformed in (0, 1)
    columns = MetricsReader(path).read_new_columns(COLUMNS)
    assert columns.columns["train"]["loss"].tolist() == [0.5, 0.5]
    assert time.perf_counter() - start < 10
