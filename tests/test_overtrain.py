"""The overtraining detector against the labelled curves in tests/curves, plus its checkpoint picks."""

from __future__ import annotations

import importlib.util
import json
import math
import random
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

import trainer.overtrain as overtrain
from trainer.overtrain import (Candidate, Detector, DetectorConfig, Evaluation, _NoiseWindow, analyse, candidates,
                               ema, evaluations_from_records, local_minima, noise_correlation, noise_level,
                               protected_checkpoints, recommend)

CURVES = sorted((Path(__file__).resolve().parent / "curves").glob("*.json"))
ROOT = Path(__file__).resolve().parent.parent
CONFIG = DetectorConfig()
SLACK = CONFIG.patience + 2  # the bar: onset reported within patience + 2 evaluations
WITHOUT_ONSET = [p for p in CURVES if json.loads(p.read_text())["label"] is None]  # plateaus, improvement, ...


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def replay(item: dict, config: DetectorConfig = CONFIG) -> list:
    detector = Detector(config)
    return [detector.update(Evaluation(**e)) for e in item["evaluations"]]


def ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def of_kind(*kinds: str) -> list[Path]:
    return [p for p in CURVES if load(p)["kind"] in kinds]


def test_labelled_set_is_big_and_varied() -> None:
    items = [load(p) for p in CURVES]
    kinds = {i["kind"] for i in items}
    assert len(items) >= 20 and len(WITHOUT_ONSET) >= 10
    assert {"synthetic-onset", "noisy-plateau", "slow-improvement", "spikes", "real-tiny-overfit"} <= kinds
    assert sum(i["kind"] == "real-tiny-overfit" for i in items) >= 2
    for item in items:  # labels point into the curve, and every curve has something to recommend
        assert item["label"] is None or 0 <= item["label"] < len(item["evaluations"]), item["name"]
        assert item["checkpoints"], item["name"]


WITH_ONSET = [p for p in CURVES if load(p)["label"] is not None]


def called_onsets(item: dict, config: DetectorConfig = CONFIG) -> list[tuple[int, int]]:
    """(evaluation index, reported onset index) for every evaluation called overtraining."""
    steps = [e["step"] for e in item["evaluations"]]
    return [(k, steps.index(v.onset_step)) for k, v in enumerate(replay(item, config))
            if v.verdict == "overtraining"]


@pytest.mark.parametrize("path", WITH_ONSET, ids=ids(WITH_ONSET))
def test_onset_reported_within_patience_plus_two(path: Path) -> None:
    item = load(path)
    called = called_onsets(item)
    assert called, f"{item['name']}: overtraining never reported (true onset at evaluation {item['label']})"
    assert called[0][0] > item["label"], "called before the true onset"
    for k, onset in called:  # every overtraining verdict names the right onset, not just the first
        assert abs(onset - item["label"]) <= SLACK, (item["name"], k, onset, item["label"])


def test_real_overfit_with_noisy_validation_is_called() -> None:
    # 2 validation clips: noise 5-8% of the level, a rise of ~2 noise deviations; the smoothed
    # minimum sits a noise deviation below the bottom's level, which hid the rise from a guard
    # measured against it
    item = load(ROOT / "tests" / "curves" / "real-overfit-3clips.json")
    verdict = replay(item)[-1]
    assert verdict.verdict == "overtraining" and "while train loss fell" in verdict.message
    steps = [e["step"] for e in item["evaluations"]]
    assert abs(steps.index(verdict.onset_step) - item["label"]) <= SLACK


def test_overtraining_message_names_onset_and_losses() -> None:
    item = load(of_kind("synthetic-onset")[0])
    verdict = next(v for v in replay(item) if v.verdict == "overtraining")
    assert verdict.message.startswith(f"overtraining since step {verdict.onset_step}: val loss ")
    assert "while train loss fell" in verdict.message and f"at step {verdict.best_step}" in verdict.message


@pytest.mark.parametrize("path", WITHOUT_ONSET, ids=ids(WITHOUT_ONSET))
def test_plateaus_and_noisy_improvement_never_called_overtraining(path: Path) -> None:
    item = load(path)
    verdicts = [v.verdict for v in replay(item)]
    assert "overtraining" not in verdicts, f"{item['name']}: evaluation {verdicts.index('overtraining')}"
    if item["kind"] in ("noisy-plateau", "late-small-rise", "both-rising", "dips"):
        assert verdicts[-1] == "plateau"  # and the flat end is named, not called improving
    if item["kind"] in ("slow-improvement", "spikes"):
        assert verdicts[-1] == "improving"


def make_synthetic():
    """tests/curves/make_synthetic.py as a module (the folder is no package)."""
    spec = importlib.util.spec_from_file_location("make_synthetic", ROOT / "tests" / "curves" / "make_synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ar1_plateaus_called() -> int:
    """How many of 100 random AR(1) 0.5 noise plateaus (3% and 8% noise, seeds outside the bench's) are called."""
    synthetic, called = make_synthetic(), 0
    for level, noise in enumerate((0.03, 0.08)):
        for seed in range(50):
            item = synthetic.curve("p", "noisy-plateau", "", 170_000 + 1000 * level + seed, 150,
                                   synthetic.decay(3.0, 0.9, 6), synthetic.decay(3.0, 0.15, 30), noise,
                                   rises_for_good=False, noise_rho=0.5)
            called += "overtraining" in [v.verdict for v in replay(item)]
    return called


def test_autocorrelated_noise_plateaus_are_rarely_called(monkeypatch: pytest.MonkeyPatch) -> None:
    # val loss on a fixed validation set under a slowly changing model has positively correlated
    # noise, which wanders in runs; with [schedule] early_stop a false call stops training on a plateau
    assert ar1_plateaus_called() <= 2
    monkeypatch.setattr(overtrain, "CORRELATION_MIN", 10**9)  # the noise read as independent, as before
    assert ar1_plateaus_called() >= 20


def test_noise_correlation_reads_ar1_coefficient_whatever_the_trend() -> None:
    rng = random.Random(3)
    for phi in (0.0, 0.5, 0.8):
        noise, previous = [], 0.0
        for _ in range(4000):
            previous = phi * previous + rng.gauss(0, 1)
            noise.append(previous)
        assert noise_correlation(noise) == pytest.approx(phi, abs=0.06)
        # a steady rise (of a rise under test) leaves the residuals around the moving average alone
        assert noise_correlation([v + 0.5 * t for t, v in enumerate(noise)]) == pytest.approx(noise_correlation(noise))
        assert noise_correlation(noise, standard_errors=1.0) > noise_correlation(noise)
    assert noise_correlation([1.0, 2.0]) == 0.0 and noise_correlation([3.0] * 20) == 0.0


def test_detector_noise_level_matches_noise_level_to_the_bit() -> None:
    rng = random.Random(11)
    values = [rng.gauss(1, 0.1) if rng.random() > 0.1 else rng.choice([math.nan, math.inf]) for _ in range(300)]
    window = _NoiseWindow()
    assert [window.push(v) for v in values] == [noise_level(values[:k + 1]) for k in range(len(values))]


@pytest.mark.parametrize("smoothing", [0.0, 0.3, 0.8])
def test_no_false_alarm_at_other_smoothings(smoothing: float) -> None:
    # the noise test reads raw values, so a user's smoothing (0 = none) does not loosen it
    config = DetectorConfig(smoothing=smoothing)
    called = [p.stem for p in WITHOUT_ONSET if "overtraining" in [v.verdict for v in replay(load(p), config)]]
    assert called == []


@pytest.mark.parametrize("patience", [1, 3, 10, 40])
def test_any_patience_replays_every_curve(patience: int) -> None:
    # patience is a [schedule] setting (1..10000): a window reaching back before the first
    # evaluation is no error (it raised IndexError at the third evaluation for patience > 6)
    config = DetectorConfig(patience=patience)
    for path in CURVES:
        assert len(replay(load(path), config)) == len(load(path)["evaluations"])


def test_longer_patience_still_finds_synthetic_onsets() -> None:
    config = DetectorConfig(patience=10)
    for path in of_kind("synthetic-onset"):
        item = load(path)
        called = called_onsets(item, config)
        assert called and called[0][0] > item["label"], item["name"]
        assert all(abs(onset - item["label"]) <= config.patience + 2 for _, onset in called), item["name"]


@pytest.mark.parametrize("path", of_kind("attention-collapse"), ids=ids(of_kind("attention-collapse")))
def test_attention_collapse_is_called_and_wins(path: Path) -> None:
    item = load(path)
    verdicts = [v.verdict for v in replay(item)]
    first = verdicts.index("collapsed")
    assert item["collapse"] <= first <= item["collapse"] + SLACK
    assert set(verdicts[first:]) == {"collapsed"}
    assert "collapsed" not in verdicts[:item["collapse"]]


@pytest.mark.parametrize("path", CURVES, ids=ids(CURVES))
def test_recommendation_is_lowest_val_checkpoint(path: Path) -> None:
    checkpoints = {int(s): v for s, v in load(path)["checkpoints"].items()}
    best = min(checkpoints, key=lambda s: checkpoints[s])
    assert recommend(checkpoints) == best
    assert recommend({**checkpoints, 10**9: None, 10**9 + 1: math.nan}) == best  # no val loss never wins
    assert recommend({1: None}) is None and recommend({}) is None


@pytest.mark.parametrize("path", of_kind("synthetic-onset", "real-tiny-overfit", "attention-collapse"),
                         ids=ids(of_kind("synthetic-onset", "real-tiny-overfit", "attention-collapse")))
def test_state_dict_round_trip_continues_identically(path: Path) -> None:
    item = load(path)
    evaluations = [Evaluation(**e) for e in item["evaluations"]]
    straight = replay(item)
    for cut in (1, len(evaluations) // 3, len(evaluations) // 2, len(evaluations) - 2):
        first = Detector(CONFIG)
        for e in evaluations[:cut]:
            first.update(e)
        resumed = Detector(CONFIG)
        resumed.load_state_dict(json.loads(json.dumps(first.state_dict(), allow_nan=False)))
        assert resumed.verdict == first.verdict
        assert [resumed.update(e) for e in evaluations[cut:]] == straight[cut:]


def test_changed_flags_each_change_of_verdict_once() -> None:
    item = load(of_kind("synthetic-onset")[0])
    verdicts = replay(item)
    previous = ["improving"] + [v.verdict for v in verdicts[:-1]]
    assert [v.changed for v in verdicts] == [v.verdict != p for v, p in zip(verdicts, previous)]
    assert sum(v.changed for v in verdicts) >= 2  # at least improving -> plateau/overtraining happened


def test_ema_matches_tensorboard() -> None:
    # TensorBoard: last = last*w + (1-w)*v, divided by 1 - w**n over the n finite values so far
    assert ema([2.0, 4.0, 4.0], 0.0) == [2.0, 4.0, 4.0]
    smoothed = ema([2.0, 4.0, math.nan, 4.0], 0.5)
    assert smoothed[0] == 2.0  # debiased: the first value is not pulled towards zero
    assert smoothed[1] == pytest.approx((0.5 * 0.5 * 2 + 0.5 * 4) / (1 - 0.25))
    assert math.isnan(smoothed[2])
    assert smoothed[3] == pytest.approx(((0.5 * 0.5 * 2 + 0.5 * 4) * 0.5 + 0.5 * 4) / (1 - 0.125))
    assert ema([3.0] * 10, 0.9) == pytest.approx([3.0] * 10)


def test_local_minima_ignore_noise_and_report_raw_minimum() -> None:
    rng = random.Random(7)
    # two clear valleys (at 20 and 60) with small noise; a 0.3% wiggle must not count
    clean = [1 + 0.3 * min(abs(t - 20), abs(t - 60)) / 20 for t in range(80)]
    values = [v * (1 + rng.gauss(0, 0.003)) for v in clean]
    steps = [10 * (t + 1) for t in range(80)]
    found = local_minima(steps, values, prominence=0.02, smoothing=0.6)
    assert len(found) == 2
    assert abs(found[0] - 20) <= 2 and abs(found[1] - 60) <= 2
    for k in found:  # reported at the raw minimum nearby, not at the lagging smoothed one
        assert values[k] == min(values[max(0, k - 2):k + 3])
    assert local_minima(steps, values, prominence=0.5, smoothing=0.6) == []


def test_candidates_map_to_nearest_checkpoint_and_are_protected() -> None:
    values = [3, 2, 1.5, 1.2, 1.0, 1.2, 1.5, 1.4, 1.3, 0.9, 0.8, 0.85, 1.0, 1.2, 1.4]
    evaluations = [Evaluation(100 * (k + 1), v) for k, v in enumerate(values)]
    checkpoints: dict[int, float | None] = {400: 1.2, 700: 1.5, 1000: 0.9, 1400: 1.2, 1500: None}
    config = DetectorConfig(smoothing=0.0)
    assert candidates(evaluations, checkpoints, config) == [Candidate(500, 1.0, 400, 1.2),
                                                            Candidate(1100, 0.8, 1000, 0.9)]
    assert protected_checkpoints(evaluations, checkpoints, 1, config) == {1000}
    assert protected_checkpoints(evaluations, checkpoints, 3, config) == {400, 1000}
    assert protected_checkpoints(evaluations, {**checkpoints, 1500: 0.5}, 1, config) == {1000, 1500}


def records_with_resume() -> list[dict]:
    """A run that rose after step 500, was killed at 800 and resumed from its checkpoint at 500."""
    records: list[dict] = [{"kind": "start", "step": 0, "resumed_from": None}]
    first_run = [3, 2, 1.5, 1.2, 1.0, 1.1, 1.3, 1.6]  # val at 100..800: would look like overtraining
    for k, val in enumerate(first_run):
        step = 100 * (k + 1)
        records += [{"kind": "train", "step": step - 50, "loss": 9.0}, {"kind": "train", "step": step, "loss": 7.0},
                    {"kind": "val", "step": step, "loss": val, "attention_score": 0.4}]
        if step in (500, 800):
            records.append({"kind": "checkpoint", "step": step, "val_loss": val, "tags": ["backup"]})
    records.append({"kind": "start", "step": 500, "resumed_from": 500})
    for k, val in enumerate([0.9, 0.8, 0.7]):  # after the resume it keeps improving
        step = 600 + 100 * k
        records += [{"kind": "train", "step": step, "loss": 1.0}, {"kind": "val", "step": step, "loss": val},
                    {"kind": "checkpoint", "step": step, "val_loss": val, "tags": ["best"]}]
    return records


def test_analyse_honours_resume_and_tags() -> None:
    result = analyse(records_with_resume())
    history_steps = [h["step"] for h in result["history"]]
    assert history_steps == [100, 200, 300, 400, 500, 600, 700, 800]
    assert result["verdict"]["verdict"] == "improving" and result["verdict"]["best_val"] == 0.7
    assert result["onset_step"] is None
    assert result["recommended"] == 800
    assert result["tags"][800] == ["recommended", "best"]
    assert set(result["tags"]) == {500, 600, 700, 800}  # the superseded checkpoint record at 800 is gone
    rotated = analyse(records_with_resume(), existing={500, 600, 700})  # 800 deleted from disk
    assert rotated["recommended"] == 700 and 800 not in rotated["tags"]
    json.dumps(result)  # the TUI and `voxtop checkpoints --json` print it as is


def test_train_loss_of_an_evaluation_is_mean_since_previous_one() -> None:
    records = records_with_resume()[:8] + [{"kind": "val", "step": 250, "loss": 1.9}]
    evaluations, checkpoints, _ = evaluations_from_records(records)
    # 9 and 7 before each of the first two; none between 200 and 250 but one at 250: the last one
    assert [(e.step, e.train_loss) for e in evaluations] == [(100, 8.0), (200, 8.0), (250, 9.0)]
    assert evaluations[0].attention_score == 0.4 and checkpoints == {}
    result = analyse(records)
    detector = Detector()
    assert result["history"] == [asdict(detector.update(e)) for e in evaluations]


@pytest.mark.parametrize("path", of_kind("real-tiny-overfit"), ids=ids(of_kind("real-tiny-overfit")))
def test_analyse_of_real_run_agrees_with_detector(path: Path) -> None:
    item = load(path)
    records: list[dict] = []
    for e in item["evaluations"]:
        records += [{"kind": "train", "step": e["step"], "loss": e["train_loss"]},
                    {"kind": "val", "step": e["step"], "loss": e["val_loss"], "attention_score": e["attention_score"]}]
    records += [{"kind": "checkpoint", "step": int(s), "val_loss": v, "tags": []} for s, v in item["checkpoints"].items()]
    result = analyse(records)
    assert result["history"] == [asdict(v) for v in replay(item)]
    checkpoints = {int(s): v for s, v in item["checkpoints"].items()}
    assert result["recommended"] == min(checkpoints, key=lambda s: checkpoints[s])
    assert "recommended" in result["tags"][result["recommended"]]


def test_import_leaves_torch_out() -> None:
    code = ("import sys, trainer.overtrain as o; o.analyse([{'kind': 'val', 'step': 1, 'loss': 1.0}]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'textual', 'numpy')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
