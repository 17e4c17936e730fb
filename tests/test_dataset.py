"""`voxtop dataset check` / `info` on datasets built in the test, each broken one way."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, VOXTOP, make_dataset, write_wav
from trainer.dataset import DatasetError, format_duration, load_clips, scan


def problems_of(path: Path, **kwargs) -> list[str]:
    return [str(p) for p in scan(path, use_cache=False, **kwargs).errors]


def test_valid_dataset_has_no_errors(good_dataset: Path) -> None:
    report = scan(good_dataset)
    assert report.valid and len(report.clips) == 6
    assert report.info["clips"] == 6 and report.info["total_s"] == pytest.approx(3.0, abs=0.01)
    assert report.info["sample_rates"] == {"22050": 6}


def test_missing_metadata_and_wavs(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    found = problems_of(tmp_path / "empty")
    assert any("metadata.csv" in p and "missing" in p for p in found)
    assert any("wavs/" in p and "missing" in p for p in found)


def test_each_metadata_problem_names_its_line(tmp_path: Path) -> None:
    lines = [
        "a|Fine text.",                 # 1
        "b has no separator",           # 2 malformed
        "c|",                           # 3 empty text
        "a|Duplicate id.",              # 4 duplicate
        "d|Un café, s'il vous plaît.",  # 5 outside the English alphabet
        "e|one|two|three",              # 6 too many fields
        "f.wav|Id with extension.",     # 7 fine
        "g|raw 3|normalized three",     # 8 fine: third column used
    ]
    root = make_dataset(tmp_path / "ds", lines, {k: {} for k in "acdefg"})
    found = problems_of(root)
    assert any(p.startswith("metadata.csv:2:") and "malformed" in p for p in found)
    assert any(p.startswith("metadata.csv:3:") and "empty text" in p for p in found)
    assert any(p.startswith("metadata.csv:4:") and "duplicate id 'a' (first at line 1)" in p for p in found)
    assert any("U+00E9 LATIN SMALL LETTER E WITH ACUTE at line 5" in p for p in found)
    assert any(p.startswith("metadata.csv:6:") and "4 field(s)" in p for p in found)
    assert len(found) == 6  # é and î on line 5, plus the four above
    assert {c.id for c in scan(root, use_cache=False).clips} == {"a", "f", "g"}
    assert next(c for c in scan(root).clips if c.id == "g").text == "normalized three"
    # The same text is fine for a language whose alphabet has those letters.
    assert not any("line 5" in p for p in problems_of(root, language="fr"))


def test_non_utf8_line(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds", ["a|Fine."])
    with open(root / "metadata.csv", "ab") as handle:
        handle.write(b"b|caf\xe9 latin-1\n")
    write_wav(root / "wavs" / "b.wav")
    found = problems_of(root)
    assert len(found) == 1 and found[0].startswith("metadata.csv:2:") and "not UTF-8" in found[0]


def test_audio_problems(tmp_path: Path) -> None:
    lines = ["missing|A.", "corrupt|B.", "empty|C.", "rate|D.", "stereo|E.", "ok|F."]
    root = make_dataset(tmp_path / "ds", lines, {
        "rate": {"rate": 44100}, "stereo": {"channels": 2}, "ok": {}, "empty": {"seconds": 0}})
    (root / "wavs" / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage, not a wave file at all")
    found = problems_of(root)
    joined = "\n".join(found)
    assert "metadata.csv:1: error: wavs/missing.wav is listed but does not exist" in joined
    assert "wavs/corrupt.wav: error: unreadable or corrupt audio" in joined
    assert "wavs/empty.wav: error: empty audio (0 samples)" in joined
    assert "sample rate is 44100 Hz, expected 22050 Hz" in joined
    assert "has 2 channels, expected 1 (mono)" in joined
    assert len(found) == 5
    # Resampling in the config turns rate and channel problems into usable clips.
    assert len(problems_of(root, resample=True)) == 3


def test_id_cannot_escape_wavs_folder(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds", ["../secret|Text."], {})
    assert any("plain file name" in p for p in problems_of(root))


def test_load_clips_refuses_invalid(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds", ["a|Fine.", "b|"], {"a": {}, "b": {}})
    with pytest.raises(DatasetError, match="metadata.csv:2"):
        load_clips(root)


def test_info_cache_is_used_and_invalidated(good_dataset: Path) -> None:
    first = scan(good_dataset)
    cache = good_dataset / ".voxtop" / "info.json"
    assert cache.is_file()
    # A hit returns the cached figures without reading audio: prove it by corrupting the cache's figure.
    data = json.loads(cache.read_text())
    data["info"]["words"] = 12345
    cache.write_text(json.dumps(data))
    assert scan(good_dataset).info["words"] == 12345
    # Changing any wav (size and mtime) invalidates it.
    write_wav(good_dataset / "wavs" / "clip00.wav", seconds=1.5)
    again = scan(good_dataset)
    assert again.info["words"] == first.info["words"]
    assert again.info["total_s"] == pytest.approx(first.info["total_s"] + 1.0, abs=0.01)
    # So does editing metadata.csv.
    meta = good_dataset / "metadata.csv"
    meta.write_text(meta.read_text() + "extra|Another line.\n")
    os.utime(meta, ns=(1, 1))
    assert not scan(good_dataset).valid


def test_small_dataset_warns(good_dataset: Path) -> None:
    report = scan(good_dataset)
    assert report.valid and report.info["small"]
    assert any(p.severity == "warning" and "minutes of audio" in p.message for p in report.problems)


def test_format_duration() -> None:
    assert format_duration(3725.4) == "1:02:05"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VOXTOP, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_cli_check_exit_codes_and_json(tmp_path: Path, good_dataset: Path) -> None:
    ok = run_cli("dataset", "check", str(good_dataset))
    assert ok.returncode == 0 and "valid: 6 clips" in ok.stdout
    bad = make_dataset(tmp_path / "bad", ["a|", "b|Fine."], {"b": {}})
    result = run_cli("dataset", "check", str(bad))
    assert result.returncode == 1
    assert f"{bad}/metadata.csv:1: error: empty text" in result.stdout
    as_json = json.loads(run_cli("dataset", "check", str(bad), "--json").stdout)
    assert as_json["valid"] is False and as_json["problems"][0]["line"] == 1


def test_cli_info_on_demo() -> None:
    result = run_cli("dataset", "info", "datasets/demo", "--json")
    info = json.loads(result.stdout)
    assert result.returncode == 0 and info["valid"]
    assert 100 <= info["clips"] <= 200 and info["sample_rates"] == {"22050": info["clips"]}
    text = run_cli("dataset", "info", "datasets/demo").stdout
    assert "clips       " in text and "duration    0:0" in text


def test_cli_usage_error_exit_2() -> None:
    assert run_cli("dataset", "check").returncode == 2
    assert run_cli("dataset", "check", ".", "--language", "xx").returncode == 2
