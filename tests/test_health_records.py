"""Health records as readers take them, and the one recommendation rule that weighs them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from health_helpers import health_record, write_health
from trainer.health_records import (MAX_ITEMS, MAX_TEXT_CHARS, health_by_step, health_line, heard_lines,
                                    parse_health)
from trainer.overtrain import analyse, recommend, recommendation_reason
from tui_helpers import FakeRun, curve_run

BRIEF_RECORD = {
    "t": 1764755000.0, "kind": "health", "step": 300, "checkpoint": "checkpoints/step-00000300.pt",
    "sentences": 12, "reached_end": 11, "stopped": 10, "monotonic": 12, "read_through": 10, "understood": 3,
    "wer": 0.71, "monotonicity": 0.985, "length_ratio": 0.93, "diagonality": 0.91,
    "recogniser": "pocketsphinx 5.1.1 (en-us)", "elapsed_s": 21.4,
    "items": [{"text": "The birch canoe slid on the smooth planks.", "reached_end": True, "stopped": True,
               "stop": "gate", "frames": 140, "expected_frames": 151.2, "length_ratio": 0.93,
               "monotonicity": 0.99, "skipped": 0, "repeated": 0, "diagonality": 0.95,
               "heard": "the birch canoe slid on the smooth planks",
               "chosen": "The birch canoe slid on the smooth planks.", "understood": True, "wer": 0.0,
               "wav": "health/step-00000300/00.wav", "alignment": "health/step-00000300/00.npy"},
              {"text": "Glue the sheet to the dark blue background.", "reached_end": True, "stopped": False,
               "stop": "limit", "frames": 400, "expected_frames": 160.0, "length_ratio": 2.5,
               "monotonicity": 0.9, "skipped": 2, "repeated": 1, "diagonality": 0.5,
               "heard": "glue the [bold]sheet[/bold]", "chosen": "Rice is often served in round bowls.",
               "understood": False, "wer": 0.75, "wav": "health/step-00000300/01.wav",
               "alignment": "health/step-00000300/01.npy"}]}


def test_the_record_of_the_design_reads_in_full() -> None:
    health = parse_health(BRIEF_RECORD)
    assert health is not None
    assert (health.step, health.sentences, health.read_through, health.understood) == (300, 12, 10, 3)
    assert health.reads_text() == "10/12" and health.understood_text() == "3/12"
    assert health_line(health) == "step 300: reads to the end 10/12 · stops 10/12 · understood 3/12 · WER 0.71"
    # the misheard sentence first; markup-like text stays literal text
    assert heard_lines(health, 2) == [
        "not understood: heard \u201cglue the [bold]sheet[/bold]\u201d for "
        "\u201cGlue the sheet to the dark blue background.\u201d",
        "understood: heard \u201cthe birch canoe slid on the smooth planks\u201d for "
        "\u201cThe birch canoe slid on the smooth planks.\u201d"]
    assert health.items[1].stop == "limit" and health.items[0].wav == "health/step-00000300/00.wav"
    assert json.loads(json.dumps(health.as_json()))["read_through"] == 10


def test_without_a_recogniser_understood_is_unknown_and_the_attention_figures_show() -> None:
    health = parse_health({**BRIEF_RECORD, "understood": None, "wer": None, "recogniser": None,
                           "items": [{**item, "heard": None, "understood": None} for item in BRIEF_RECORD["items"]]})
    assert health is not None and health.understood is None and health.understood_text() == "-"
    assert health_line(health) == "step 300: reads to the end 10/12 · stops 10/12 · understood -"
    assert heard_lines(health, 2) == ["monotonic 12/12 · reach the end 11/12 · length x0.93 · "
                                      "diagonality 0.91 · no recogniser"]
    assert parse_health({k: v for k, v in BRIEF_RECORD.items() if k != "understood"}).understood is None


@pytest.mark.parametrize("change", [
    {"step": None}, {"step": -1}, {"step": "300"}, {"step": True}, {"sentences": 0}, {"sentences": None},
    {"read_through": 13}, {"read_through": None}, {"read_through": 2.0}, {"stopped": -1}, {"reached_end": True},
    {"understood": "3"}, {"understood": 99},
], ids=str)
def test_a_record_whose_counts_cannot_be_trusted_reads_as_none(change: dict) -> None:
    assert parse_health({**BRIEF_RECORD, **change}) is None
    missing = next(iter(change))
    if missing not in ("understood",):
        assert parse_health({k: v for k, v in BRIEF_RECORD.items() if k != missing}) is None


def test_bad_means_texts_and_items_read_as_unknown_not_as_a_bad_record() -> None:
    health = parse_health({**BRIEF_RECORD, "wer": "high", "length_ratio": math.inf, "diagonality": None,
                           "recogniser": 5, "items": [None, 7, {"text": None}, {"text": "ok\x1b[31m\nnext\tline",
                                                                                "heard": ["x"], "stop": "???"}]})
    assert health is not None
    assert (health.wer, health.length_ratio, health.diagonality, health.recogniser) == (None, None, None, None)
    assert len(health.items) == 1
    item = health.items[0]
    assert item.text == "ok [31m next line" and item.heard is None and item.stop is None
    assert parse_health({**BRIEF_RECORD, "items": "not a list"}).items == ()


def test_a_huge_record_is_bounded() -> None:
    huge = {**BRIEF_RECORD, "items": [{**BRIEF_RECORD["items"][0], "heard": "word " * 100_000}] * 10_000}
    health = parse_health(huge)
    assert health is not None and len(health.items) == MAX_ITEMS
    assert len(health.items[0].heard) == MAX_TEXT_CHARS and health.items[0].heard.endswith("…")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(list(BRIEF_RECORD) + ["junk"]),
                       st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                                        st.sampled_from(list(BRIEF_RECORD["items"][0])), inner, max_size=4),
                                    max_leaves=10)))
def test_any_record_parses_or_reads_as_none_and_then_prints(record: dict) -> None:
    health = parse_health({**BRIEF_RECORD, **record})
    if health is not None:
        assert 0 <= health.read_through <= health.sentences
        health_line(health), heard_lines(health, 2), json.dumps(health.as_json())


def _records(*pairs: tuple[str, dict]) -> list[dict]:
    return [{"t": 0.0, "kind": kind, **fields} for kind, fields in pairs]


def test_newest_good_record_per_checkpoint_under_the_resume_rule() -> None:
    records = _records(
        ("health", {"step": 100, **health_record(100, 3, 1)}),
        ("health", {"step": 100, **health_record(100, 5, 2)}),  # checked again: the newest counts
        ("health", {"step": 100, "sentences": "twelve"}),  # a bad one does not replace a good one
        ("health", {"step": 200, **health_record(200, 9, 4)}),
        ("health", {"step": 300, **health_record(300, 12, 12)}),
        ("start", {"step": 200, "resumed_from": 200}),  # what came after 200 is superseded
    )
    found = health_by_step(records)
    assert sorted(found) == [100, 200] and found[100].read_through == 5
    assert sorted(health_by_step(records, existing={200, 300})) == [200]


def _health(**read_through_understood: tuple[int, int | None]) -> dict:
    """Parsed health by step from `s200=(read_through, understood)` keywords."""
    found = {}
    for name, (reads, understood) in read_through_understood.items():
        step = int(name.removeprefix("s"))
        found[step] = parse_health({"step": step, **health_record(step, reads, understood)})
    return found


def test_a_checkpoint_that_speaks_beats_a_lower_val_loss() -> None:
    val_loss = {200: 0.95, 400: 0.80}
    assert recommend(val_loss) == 400  # without health: the lowest val loss
    health = _health(s200=(11, 3), s400=(2, 1))
    assert recommend(val_loss, health) == 200
    assert recommendation_reason(200, val_loss, health) == "reads to the end 11/12, understood 3/12"
    assert recommendation_reason(400, val_loss) == "lowest val loss"


def test_ties_go_to_understood_then_val_loss_then_the_newest() -> None:
    assert recommend({200: 0.9, 400: 0.8}, _health(s200=(10, 5), s400=(10, 4))) == 200
    assert recommend({200: 0.9, 400: 0.8}, _health(s200=(10, 4), s400=(10, 4))) == 400
    assert recommend({200: 0.9, 400: 0.8}, _health(s200=(10, None), s400=(10, 0))) == 400  # unknown < 0
    assert recommend({200: None, 400: None}, _health(s200=(10, 4), s400=(10, 4))) == 400
    assert recommend({0: 0.5, 100: None}, _health(s0=(1, 0), s100=(1, 0))) == 0  # step 0 is a step


def test_only_checked_checkpoints_on_disk_compete_once_any_is_checked() -> None:
    # 600 is not checked yet (its health arrives later): the checked one that reads through wins
    assert recommend({200: 0.9, 600: 0.5}, _health(s200=(3, 0))) == 200
    # while no checked checkpoint reads a sentence through or is understood, health tells nothing
    # apart: the lowest val loss over all of them decides
    assert recommend({200: 0.9, 600: 0.5}, _health(s200=(0, 0))) == 600
    # health of a checkpoint no longer on disk (not a key) is ignored
    assert recommend({200: 0.9, 600: 0.5}, _health(s400=(12, 12))) == 600
    assert recommend({}, _health(s400=(12, 12))) is None


def test_analyse_and_the_live_analysis_recommend_the_same_speaking_checkpoint(tmp_path: Path) -> None:
    from tui.follow import RunFollower
    from tui.run_analysis import LiveAnalysis

    fake = curve_run(tmp_path, "u")  # val minimum at 1000: the lowest val loss is checkpoint 1000
    write_health(fake, 1000, 2, 1)
    write_health(fake, 2400, 11, 3)
    write_health(fake, 3000, 11, 2)
    existing = {c.step for c in fake.run.checkpoints()}
    from trainer.rundir import read_metrics

    result = analyse(read_metrics(fake.run.metrics_path), existing=existing)
    assert result["recommended"] == 2400
    assert result["recommended_reason"] == "reads to the end 11/12, understood 3/12"
    assert result["tags"][2400][0] == "recommended" and "minimum" in result["tags"][1000]
    follower = RunFollower(fake.run)
    follower.poll()
    history = follower.history
    live = LiveAnalysis().update(history.train_loss, history.val_loss, history.val_attention,
                                 history.checkpoint_records, existing, history.health)
    for key in ("recommended", "recommended_reason", "tags", "minima"):
        assert live[key] == result[key], key


def test_export_picks_the_recommended_checkpoint(tmp_path: Path) -> None:
    from trainer.export import choose_checkpoint

    fake = FakeRun(tmp_path, state="finished", hold_lock=False)
    fake.start()
    fake.checkpoint(200, val_loss=0.95)
    fake.checkpoint(400, val_loss=0.80)
    path, reason = choose_checkpoint(fake.run)
    assert path == fake.run.checkpoint_path(400) and reason == "recommended: lowest val loss"
    write_health(fake, 200, 11, 3)
    write_health(fake, 400, 2, 1)
    path, reason = choose_checkpoint(fake.run)
    assert path == fake.run.checkpoint_path(200) and reason == "recommended: reads to the end 11/12, understood 3/12"
    fake.run.checkpoint_path(200).unlink()  # rotated away: the speaking one left on disk
    assert choose_checkpoint(fake.run)[0] == fake.run.checkpoint_path(400)
