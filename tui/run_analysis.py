"""The overtraining analysis of a followed run, kept up to date from the follower's arrays.

`trainer.overtrain.analyse` replays a whole metrics.jsonl; the Monitor re-judges a run each
time a `val` or `checkpoint` record arrives, so `LiveAnalysis` feeds the detector only the
new evaluations and finds the val-loss minima with numpy over the in-memory series. Its
answer is `analyse()`'s on the same records (tests compare the two); a run with 10,000
evaluations costs a few milliseconds per new one.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import numpy as np

from trainer.health_records import HealthSummary
from trainer.overtrain import (MINIMA_NOISE_SDS, Candidate, Detector, DetectorConfig, Evaluation, Verdict,
                               noise_level, snap_radius, tag_checkpoints)
from trainer.rundir import finite
from trainer.rundir import queries
from trainer.rundir.queries import detector_config
from tui.series import Series


def _nearest_lower(values: list[float]) -> list[int]:
    """For each index, the nearest earlier index holding a strictly lower value (-1: none)."""
    stack: list[int] = []
    found = []
    for index, value in enumerate(values):
        while stack and values[stack[-1]] >= value:
            stack.pop()
        found.append(stack[-1] if stack else -1)
        stack.append(index)
    return found


def local_minima(raw: np.ndarray, smooth: np.ndarray, prominence: float, smoothing: float) -> list[int]:
    """`trainer.overtrain.local_minima` for finite series, in O(n) instead of a walk per minimum.

    `smooth` must be `overtrain.ema(raw, smoothing)` to the bit (LiveAnalysis keeps it so).
    """
    n = len(smooth)
    if n < 3:
        return []
    interior = np.flatnonzero((smooth[1:-1] < smooth[:-2]) & (smooth[1:-1] <= smooth[2:])) + 1
    if not len(interior):
        return []
    values = smooth.tolist()
    left = _nearest_lower(values)
    right = [n - 1 - k for k in reversed(_nearest_lower(values[::-1]))]  # n: none after
    smooth_noise = noise_level(raw.tolist(), n) * math.sqrt((1 - smoothing) / (1 + smoothing))
    radius, found = snap_radius(smoothing), set()
    for k in interior.tolist():
        # the highest point on each side before the series drops below this minimum again
        peak = min(float(smooth[left[k] + 1:k + 1].max()), float(smooth[k:right[k]].max()))
        if peak - values[k] >= max(prominence * abs(values[k]), MINIMA_NOISE_SDS * smooth_noise):
            low = max(0, k - radius)
            found.add(low + int(np.argmin(raw[low:min(n - 1, k + radius) + 1])))  # ties: the earliest
    return sorted(found)


class LiveAnalysis:
    """`analyse()`'s result for a followed run, updated from the new evaluations only."""

    def __init__(self, config: DetectorConfig = DetectorConfig()):
        self.config = config
        self.result: dict[str, Any] = empty_result()
        self._reset(None)

    def _reset(self, series: Series | None) -> None:
        self._series, self._version = series, series.version if series is not None else -1
        self._detector = Detector(self.config)
        self._fed = 0
        self._smooth: list[float] = []
        self._ema_last, self._onset_step = 0.0, None
        self._verdict: Verdict | None = None

    def update(self, train_loss: Series, val_loss: Series, val_attention: Series,
               checkpoint_records: dict[int, dict[str, Any]], existing: set[int],
               health: dict[int, HealthSummary] | None = None) -> dict[str, Any]:
        """Fold in the evaluations since the last call and re-read minima, tags and the recommendation
        (which weighs the checkpoints' read-through `health`); returns the result."""
        if val_loss is not self._series or val_loss.version != self._version or val_loss.count < self._fed:
            self._reset(val_loss)
        if val_loss.count > self._fed:
            self._feed(train_loss, val_loss, val_attention)
        self.result = self._summarise(val_loss, checkpoint_records, existing, health or {})
        return self.result

    def _feed(self, train: Series, val: Series, attention: Series) -> None:
        steps, values = val.steps, val.values
        attention_at = dict(zip(attention.steps[-(val.count - self._fed):].tolist(),
                                attention.values[-(val.count - self._fed):].tolist()))
        train_steps, train_values = train.steps, train.values
        weight = self.config.smoothing
        # the train loss of an evaluation: the mean of the train records since the previous one
        first = max(self._fed - 1, 0)
        bounds = np.searchsorted(train_steps, steps[first:val.count], "right").tolist()
        for index in range(self._fed, val.count):
            step, loss = int(steps[index]), float(values[index])
            low = bounds[index - 1 - first] if index else 0
            high = bounds[index - first]
            if high > low:
                train_loss: float | None = math.fsum(train_values[low:high].tolist()) / (high - low)
            else:
                train_loss = float(train_values[high - 1]) if high else None
            verdict = self._detector.update(Evaluation(step, loss, train_loss, attention_at.get(float(step))))
            self._verdict = verdict
            if verdict.verdict == "overtraining":
                self._onset_step = verdict.onset_step
            # overtrain.ema, one value at a time, so the minima are read from the same numbers
            self._ema_last = self._ema_last * weight + (1 - weight) * loss
            debias = 1 - weight ** (index + 1) if weight != 1 else 1.0
            self._smooth.append(self._ema_last / debias)
        self._fed = val.count

    def _summarise(self, val: Series, records: dict[int, dict[str, Any]], existing: set[int],
                   health: dict[int, HealthSummary]) -> dict[str, Any]:
        saved = {step: records[step] for step in sorted(existing) if step in records}
        val_by_checkpoint = {step: finite(r.get("val_loss")) for step, r in saved.items()}
        c = self.config
        minima = local_minima(val.values, np.asarray(self._smooth), c.prominence, c.smoothing)
        checkpoint_steps = np.asarray(list(val_by_checkpoint), dtype=np.int64)
        found = []
        for index in minima:
            step, loss = int(val.steps[index]), float(val.values[index])
            nearest = _nearest(checkpoint_steps, step)
            found.append(Candidate(step, loss, nearest,
                                   val_by_checkpoint.get(nearest) if nearest is not None else None))
        tags, recommended, reason = tag_checkpoints(found, val_by_checkpoint,
                                                    {step: list(r.get("tags") or []) for step, r in saved.items()},
                                                    health)
        verdict = asdict(self._verdict) if self._verdict is not None else None
        return {"verdict": verdict, "minima": [f.step for f in found], "onset_step": self._onset_step,
                "candidates": [asdict(f) for f in found], "recommended": recommended, "recommended_reason": reason,
                "tags": tags}


def empty_result() -> dict[str, Any]:
    """The analysis of a run without evaluations."""
    return {"verdict": None, "minima": [], "onset_step": None, "candidates": [], "recommended": None,
            "recommended_reason": None, "tags": {}}


def _nearest(sorted_steps: np.ndarray, step: int) -> int | None:
    """The saved step nearest to `step` (ties: the earlier), as overtrain.candidates maps them."""
    if not len(sorted_steps):
        return None
    at = int(np.searchsorted(sorted_steps, step))
    options = [int(s) for s in sorted_steps[max(0, at - 1):at + 1]]
    return min(options, key=lambda s: (abs(s - step), s))


def checkpoint_tags(analysis: dict[str, Any], step: int, record: dict[str, Any]) -> list[str]:
    """The tags the checkpoint table shows for `step` under `analysis` (`queries.checkpoint_tags`'s rule)."""
    return queries.checkpoint_tags(analysis["tags"], step, record)


__all__ = ["LiveAnalysis", "checkpoint_tags", "detector_config", "empty_result", "local_minima"]
