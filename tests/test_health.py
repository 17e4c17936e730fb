"""Read-through health: the measures of a rendering, the fallback stop, silence trimming, the records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from conftest import ROOT, make_dataset, only_run, tiny_config, voxtop
from trainer import config as config_mod
from trainer.health import DEFAULT_SENTENCES, measure, sentences_for, word_error_rate
from trainer.rundir import read_metrics


def diagonal(steps: int, chars: int) -> np.ndarray:
    alignment = np.zeros((steps, chars), np.float32)
    alignment[np.arange(steps), np.minimum(np.arange(steps) * chars // steps, chars - 1)] = 1.0
    return alignment


def test_a_clean_diagonal_reads_through() -> None:
    reading = measure(diagonal(60, 20), "x" * 20, frames=120, expected_frames=110.0, stop="gate")
    assert reading.reached_end and reading.stopped and reading.reads_through
    assert reading.monotonicity == 1.0 and reading.skipped == 0 and reading.repeated == 0
    assert reading.diagonality == 1.0 and reading.length_ratio == pytest.approx(120 / 110, abs=1e-3)


def test_attention_stuck_halfway_and_running_to_the_limit_does_not() -> None:
    alignment = diagonal(60, 20)
    alignment[30:] = 0.0
    alignment[30:, 9] = 1.0  # stuck on the tenth character
    reading = measure(alignment, "x" * 20, frames=300, expected_frames=110.0, stop="limit")
    assert not reading.reached_end and not reading.stopped and not reading.reads_through
    assert reading.diagonality < 0.7


def test_skips_repeats_and_monotonicity_are_counted() -> None:
    peaks = [0, 1, 2, 5, 6, 7, 3, 4, 5, 6, 7, 8, 9]  # jumps over 3-4, then goes back 4 characters
    alignment = np.zeros((len(peaks), 10), np.float32)
    alignment[np.arange(len(peaks)), peaks] = 1.0
    reading = measure(alignment, "x" * 10, frames=26, expected_frames=26.0, stop="gate")
    assert reading.repeated == 4 and reading.skipped == 0  # 3 and 4 were read on the way back
    assert reading.monotonicity == pytest.approx(11 / 12, abs=1e-4)
    assert reading.reached_end and not reading.reads_through  # below 95% monotonic
    alignment = np.zeros((5, 10), np.float32)
    alignment[np.arange(5), [0, 3, 6, 8, 9]] = 1.0
    assert measure(alignment, "x" * 10, 10, 10.0, "gate").skipped == 5


def test_stopping_needs_an_end_before_twice_the_expected_length() -> None:
    assert not measure(diagonal(60, 20), "x" * 20, frames=240, expected_frames=110.0, stop="gate").stopped
    assert measure(diagonal(60, 20), "x" * 20, frames=200, expected_frames=110.0, stop="attention").stopped


def test_word_error_rate() -> None:
    assert word_error_rate("The birch canoe slid.", "the birch canoe slid") == 0.0
    assert word_error_rate("a b c d", "a x c") == 0.5
    assert word_error_rate("one two", "") == 1.0


def test_sentences_come_from_the_config_or_the_language() -> None:
    assert sentences_for("en", "") == DEFAULT_SENTENCES["en"] and len(DEFAULT_SENTENCES["en"]) == 12
    assert sentences_for("de", " Erster Satz. | Zweiter Satz. ") == ["Erster Satz.", "Zweiter Satz."]
    for language, sentences in DEFAULT_SENTENCES.items():
        from trainer.text import get_language

        assert all(not get_language(language).unknown_characters(s) for s in sentences), language
    metadata = (ROOT / "datasets" / "demo" / "metadata.csv").read_text().lower()
    assert not any(s.lower().rstrip(".") in metadata for s in DEFAULT_SENTENCES["en"])  # held out


# --- the fallback stop --------------------------------------------------------------------


def model_that_never_stops(rest_on: int | None):
    """A tiny Tacotron2 whose stop token never fires; its attention is pinned to character `rest_on`."""
    from trainer.models.tacotron2 import build_model

    config = config_mod.Config()
    config.model.preset = "tiny"
    torch.manual_seed(0)
    model = build_model(config, 40)
    with torch.no_grad():
        model.decoder.gate_layer.bias.fill_(-1e4)
    if rest_on is not None:
        attention = model.decoder.attention_layer

        def pinned(query, memory, processed_memory, weights_cat, mask):
            weights = torch.zeros(memory.shape[0], memory.shape[1])
            weights[:, rest_on if rest_on >= 0 else memory.shape[1] + rest_on] = 1.0
            return torch.bmm(weights.unsqueeze(1), memory).squeeze(1), weights

        attention.forward = pinned
    return model


def test_the_fallback_stop_ends_a_rendering_whose_gate_never_fires() -> None:
    from trainer.synth import synthesise

    tokens = list(range(1, 11))
    resting = synthesise(model_that_never_stops(rest_on=-1), tokens, torch.device("cpu"), 200,
                         stop_after_end_frames=10)
    assert resting.stop == "attention" and not resting.reached_limit
    assert resting.mel.shape[1] == 10 and resting.alignment.shape == (5, 10)  # r = 2: five steps
    elsewhere = synthesise(model_that_never_stops(rest_on=3), tokens, torch.device("cpu"), 200,
                           stop_after_end_frames=10)
    assert elsewhere.stop == "limit" and elsewhere.reached_limit and elsewhere.mel.shape[1] == 200
    off = synthesise(model_that_never_stops(rest_on=-1), tokens, torch.device("cpu"), 40, stop_after_end_frames=0)
    assert off.stop == "limit" and off.mel.shape[1] == 40


def test_renderings_repeat_exactly_and_leave_the_training_rng_alone() -> None:
    from trainer.synth import synthesise

    model = model_that_never_stops(rest_on=None)
    torch.manual_seed(7)
    before = torch.rand(1)
    torch.manual_seed(7)
    first = synthesise(model, [3, 4, 5], torch.device("cpu"), 20)
    assert torch.rand(1) == before
    second = synthesise(model, [3, 4, 5], torch.device("cpu"), 20)
    np.testing.assert_array_equal(first.mel, second.mel)


# --- silence trimming ---------------------------------------------------------------------


def test_trimming_is_part_of_the_cache_key() -> None:
    from trainer.features import cache_key

    data = config_mod.DataConfig(dataset="x")
    trimmed = cache_key(data)
    data.trim_db = 30.0
    assert cache_key(data) != trimmed  # another threshold, other features
    data.trim_silence = False
    untrimmed = cache_key(data)
    data.trim_db = 60.0
    assert cache_key(data) == untrimmed != trimmed  # the threshold only matters when trimming


def test_trimming_cuts_leading_and_trailing_silence(tmp_path: Path) -> None:
    from trainer.features import FeatureCache
    from trainer.dataset import load_clips

    rate = 22050
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)  # one second
    audio = np.concatenate([np.zeros(rate // 2), tone, np.zeros(rate // 2)])
    dataset = make_dataset(tmp_path / "padded", ["a|A clip with silence around it."], wavs={})
    soundfile.write(str(dataset / "wavs" / "a.wav"), audio, rate, subtype="PCM_16")
    clips = load_clips(str(dataset), "en", rate, False)
    frames = {}
    for trim in (True, False):
        data = config_mod.DataConfig(dataset=str(dataset), trim_silence=trim)
        cache = FeatureCache(data)
        assert cache.build(clips) == 1  # each setting has its own cache
        frames[trim] = cache.frames(clips[0])
    assert frames[False] == 2 * rate // 256 + 1
    assert abs(frames[True] - rate / 256) <= 8  # the second of tone, give or take the margin


def test_a_run_config_from_before_the_new_defaults_keeps_the_old_behaviour(tmp_path: Path) -> None:
    old = config_mod.Config()
    raw = old.to_dict()
    for section, key in (("model", "frames_per_step"), ("data", "trim_silence"), ("train", "gate_pos_weight")):
        del raw[section][key]
    path = tmp_path / "config.toml"
    import tomli_w

    path.write_text(tomli_w.dumps(raw))
    resumed = config_mod.load(path, run_config=True)
    assert (resumed.model.frames_per_step, resumed.data.trim_silence, resumed.train.gate_pos_weight) == (1, False, 1.0)
    fresh = config_mod.load(path)  # a user's config without these keys gets today's defaults
    assert (fresh.model.frames_per_step, fresh.data.trim_silence) == (2, True)


# --- the records of a real run ------------------------------------------------------------


@pytest.mark.slow
def test_every_checkpoint_gets_a_health_record_with_its_renderings(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    config = tiny_config(tmp_path, health={"enabled": True, "sentences": "Hello there. | Good morning to you."},
                         train={"max_steps": 4, "max_decoder_steps": 24},
                         checkpoint={"every_steps": 2})
    result = voxtop("train", str(config), runs=runs, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    run = only_run(runs)
    records = read_metrics(run / "metrics.jsonl")
    health = {r["step"]: r for r in records if r["kind"] == "health"}
    assert sorted(health) == [2, 4]
    end = next(i for i, r in enumerate(records) if r["kind"] == "end")
    assert max(i for i, r in enumerate(records) if r["kind"] == "health") < end  # recorded before the end
    for step, record in health.items():
        assert record["checkpoint"] == f"checkpoints/step-{step:08d}.pt"
        assert record["sentences"] == 2 and len(record["items"]) == 2
        for key in ("reached_end", "stopped", "monotonic", "read_through"):
            assert 0 <= record[key] <= 2
        assert record["recogniser"].startswith("pocketsphinx") and 0 <= record["understood"] <= 2
        for item in record["items"]:
            assert item["stop"] in ("gate", "attention", "limit") and item["frames"] <= 24
            audio, rate = soundfile.read(run / item["wav"])
            assert rate == 22050 and len(audio) > 0
            assert np.load(run / item["alignment"]).shape[1] == len(item["text"])
            assert isinstance(item["heard"], str) and isinstance(item["understood"], bool)
    train = [r for r in records if r["kind"] == "train"]
    assert all(0 <= r["attention_diagonality"] <= 1 for r in train)
    assert "health of step 4: reads to the end" in (run / "train.log").read_text() + result.stdout


@pytest.mark.slow
def test_a_checkpoint_the_worker_cannot_read_is_reported_not_fatal(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step-00000005.pt").write_bytes(b"not a checkpoint")
    result = subprocess.run([sys.executable, "-m", "trainer.health", str(run), "--frames-per-char", "4"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "health of step-00000005.pt failed" in result.stdout
    saved = json.loads((run / "health" / "step-00000005.json").read_text())
    assert saved["step"] == 5 and saved["error"]


def test_the_end_is_the_last_letter_not_the_full_stop() -> None:
    from trainer.text import get_language

    english = get_language("en")
    ids = english.to_ids("Hello there.")
    assert english.last_spoken(ids) == len(ids) - 2  # the "e" before the full stop
    alignment = diagonal(30, len(ids) - 1)  # the peak never reaches the "."
    alignment = np.concatenate([alignment, np.zeros((30, 1), np.float32)], axis=1)
    assert not measure(alignment, "Hello there.", 60, 60.0, "gate").reached_end
    assert measure(alignment, "Hello there.", 60, 60.0, "gate", end_at=english.last_spoken(ids)).reached_end
