"""Numbers behind the charts: growing series, debiased EMA, min/max downsampling, y-range.

Everything is vectorised with numpy so that a run with a million train records still
redraws in milliseconds: the cost is a few passes over the arrays, never a Python loop
per point.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

#: Largest factor w**-k we let a block reach in `ema_debiased` (float64 tops out near 1e308).
_MAX_BLOCK_GAIN_LOG10 = 200.0


class Series:
    """An append-only (step, value) series kept in amortised-doubling numpy arrays."""

    def __init__(self, capacity: int = 1024):
        self._steps = np.empty(capacity, dtype=np.float64)
        self._values = np.empty(capacity, dtype=np.float64)
        self.count = 0
        """How many points are stored."""
        self.version = 0
        """Bumped when points are removed, so caches built on the old points know to start over."""

    def append_many(self, steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray) -> None:
        """Add points; non-finite values (NaN loss, inf) are skipped."""
        if len(steps) == 0:
            return
        new_steps = np.asarray(steps, dtype=np.float64)
        new_values = np.asarray(values, dtype=np.float64)
        keep = np.isfinite(new_values) & np.isfinite(new_steps)
        new_steps, new_values = new_steps[keep], new_values[keep]
        need = self.count + len(new_steps)
        if need > len(self._steps):
            capacity = max(need, 2 * len(self._steps))
            self._steps = np.resize(self._steps, capacity)
            self._values = np.resize(self._values, capacity)
        self._steps[self.count:need] = new_steps
        self._values[self.count:need] = new_values
        self.count = need

    def truncate_after(self, step: float) -> None:
        """Drop the points past `step` (a resume supersedes what was logged after its checkpoint)."""
        keep = self.steps <= step
        if keep.all():
            return
        kept = int(keep.sum())
        self._steps[:kept] = self.steps[keep]
        self._values[:kept] = self.values[keep]
        self.count = kept
        self.version += 1

    @property
    def steps(self) -> np.ndarray:
        return self._steps[:self.count]

    @property
    def values(self) -> np.ndarray:
        return self._values[:self.count]

    def last(self) -> float | None:
        return float(self._values[self.count - 1]) if self.count else None


def _ema_biased(x: np.ndarray, weight: float, carry: float = 0.0) -> np.ndarray:
    """s_t = w*s_(t-1) + (1-w)*x_t from s_(-1) = `carry`, solved in closed form block by block.

    Each block is a cumulative sum of x_i * w**-i, with blocks short enough that w**-i
    never overflows.
    """
    block = int(min(8192, max(1, _MAX_BLOCK_GAIN_LOG10 / -math.log10(weight))))
    out = np.empty_like(x)
    for start in range(0, len(x), block):
        chunk = x[start:start + block]
        k = np.arange(len(chunk), dtype=np.float64)
        powers = weight ** k  # w**j for j = 0..B-1
        inverse = weight ** -k
        biased = weight * powers * carry + (1.0 - weight) * powers * np.cumsum(chunk * inverse)
        out[start:start + len(chunk)] = biased
        carry = float(biased[-1])
    return out


def ema_debiased(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: s_t = w*s_(t-1) + (1-w)*x_t, divided by 1 - w**(t+1)."""
    x = np.asarray(values, dtype=np.float64)
    if weight <= 0.0 or len(x) == 0:
        return x.copy()
    weight = min(weight, 0.999999)
    t = np.arange(1, len(x) + 1, dtype=np.float64)
    return _ema_biased(x, weight) / (1.0 - weight ** t)


class IncrementalEma:
    """`ema_debiased` of a growing Series, extended by its new points only.

    A live run adds a few points per second to series of a million; smoothing them all
    again on each redraw would cost time proportional to the run's length.
    """

    def __init__(self) -> None:
        self._key: tuple[int, int, float] | None = None
        self._smoothed = Series()
        self._carry = 0.0  # the biased EMA after the last smoothed point

    def of(self, series: Series, weight: float) -> np.ndarray:
        """The smoothed values of `series` (its values unchanged at weight 0)."""
        if weight <= 0.0:
            return series.values
        weight = min(weight, 0.999999)
        key = (id(series), series.version, weight)
        if key != self._key or series.count < self._smoothed.count:
            self._key, self._smoothed, self._carry = key, Series(max(1024, series.count)), 0.0
        done = self._smoothed.count
        if series.count > done:
            biased = _ema_biased(series.values[done:], weight, self._carry)
            self._carry = float(biased[-1])
            t = np.arange(done + 1, series.count + 1, dtype=np.float64)
            self._smoothed.append_many(series.steps[done:], biased / (1.0 - weight ** t))
        return self._smoothed.values


def downsample_minmax(steps: np.ndarray, values: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """At most 2*buckets points that keep every bucket's minimum and maximum (spikes survive)."""
    n = len(values)
    if buckets <= 0 or n <= 2 * buckets:
        return np.asarray(steps), np.asarray(values)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)[:-1]
    lows = np.minimum.reduceat(values, edges)
    highs = np.maximum.reduceat(values, edges)
    starts = steps[edges]
    ends = steps[np.append(edges[1:] - 1, n - 1)]
    out_steps = np.empty(2 * buckets)
    out_values = np.empty(2 * buckets)
    out_steps[0::2], out_steps[1::2] = starts, ends
    out_values[0::2], out_values[1::2] = lows, highs
    return out_steps, out_values


def y_range(*arrays: np.ndarray, low_pct: float = 5.0, high_pct: float = 95.0) -> tuple[float, float] | None:
    """A y-range from the 5th to 95th percentile of all values, padded; outliers do not stretch it."""
    parts = [np.asarray(a, dtype=np.float64) for a in arrays if len(a)]
    if not parts:
        return None
    joined = np.concatenate(parts)
    low, high = np.percentile(joined, [low_pct, high_pct])
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 1.0
    else:
        pad = (high - low) * 0.15
    return float(low - pad), float(high + pad)


def resize_max(matrix: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """`matrix` resized to rows x cols: max-pooled when shrinking (thin lines survive), repeated when growing."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.size == 0 or rows <= 0 or cols <= 0:
        return np.zeros((max(rows, 0), max(cols, 0)))
    row_edges = np.minimum((np.arange(rows) * m.shape[0]) // rows, m.shape[0] - 1)
    col_edges = np.minimum((np.arange(cols) * m.shape[1]) // cols, m.shape[1] - 1)
    pooled = np.maximum.reduceat(m, row_edges, axis=0)
    return np.maximum.reduceat(pooled, col_edges, axis=1)


def rate_per_s(times: np.ndarray, steps: np.ndarray) -> float | None:
    """Steps per second over the points given (None without two distinct times)."""
    if len(times) < 2 or times[-1] <= times[0] or steps[-1] <= steps[0]:
        return None
    return float((steps[-1] - steps[0]) / (times[-1] - times[0]))


def column_extremes(x: np.ndarray, values: np.ndarray, low: float, high: float,
                    columns: int) -> tuple[np.ndarray, np.ndarray]:
    """The points of (x, values) between `low` and `high` reduced to each column's first-x minimum and
    last-x maximum: at most 2*columns points, and no spike is lost (TensorBoard samples 1,000 points
    at random and can drop one). One point just outside each side is kept, so a line runs to the edge.

    `x` must be sorted. The column edges are found by binary search and each column's extremes in one
    `reduceat` pass, so a million points in view cost a few milliseconds.
    """
    n = len(x)
    if n == 0 or columns <= 0:
        return np.empty(0), np.empty(0)
    first = max(0, int(np.searchsorted(x, low, "left")) - 1)
    last = min(n, int(np.searchsorted(x, high, "right")) + 1)
    x, values = x[first:last], values[first:last]
    if len(x) <= 2 * columns:
        return np.asarray(x, dtype=np.float64), np.asarray(values, dtype=np.float64)
    bounds = low + (high - low) * np.arange(columns + 1) / columns
    cuts = np.concatenate(([0], np.searchsorted(x, bounds[:-1], "left"), np.searchsorted(x, [high], "right")))
    starts = np.unique(cuts[cuts < len(x)])  # empty columns fall away
    ends = np.append(starts[1:] - 1, len(x) - 1)
    lows = np.minimum.reduceat(values, starts)
    highs = np.maximum.reduceat(values, starts)
    out_x = np.empty(2 * len(starts))
    out_values = np.empty(2 * len(starts))
    out_x[0::2], out_x[1::2] = x[starts], x[ends]
    out_values[0::2], out_values[1::2] = lows, highs
    return out_x, out_values


def view_range(values: list[np.ndarray], outliers: bool, low_pct: float = 5.0, high_pct: float = 95.0,
               sample: int = 100_000) -> tuple[float, float] | None:
    """A y-range for the values in view: the 5th to 95th percentile, padded (`outliers`: min to max).

    Percentiles are read from at most `sample` evenly spaced values per array, so a view of a
    million points costs milliseconds; extremes are read from every value.
    """
    parts = [np.asarray(v, dtype=np.float64) for v in values if len(v)]
    if not parts:
        return None
    if outliers:
        extremes = np.array([[np.nanmin(p), np.nanmax(p)] for p in parts if np.isfinite(p).any()])
        if not len(extremes):
            return None
        low, high = float(extremes[:, 0].min()), float(extremes[:, 1].max())
    else:
        thinned = np.concatenate([p[::max(1, len(p) // sample)] for p in parts])
        thinned = thinned[np.isfinite(thinned)]
        if not len(thinned):
            return None
        low, high = (float(v) for v in np.percentile(thinned, [low_pct, high_pct]))
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 1.0
    else:
        pad = (high - low) * (0.05 if outliers else 0.15)
    return low - pad, high + pad


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Values at a round spacing (1, 2, 2.5 or 5 x 10^n) between `low` and `high`."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    spacing = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    first = math.ceil(low / spacing - 1e-9) * spacing
    ticks = []
    value = first
    while value <= high + spacing * 1e-9:
        ticks.append(0.0 if abs(value) < spacing * 1e-9 else value)
        value += spacing
    return ticks


def nearest_index(x: np.ndarray, at: float) -> int | None:
    """The index of the value of sorted `x` nearest to `at` (ties: the earlier); None when empty."""
    n = len(x)
    if n == 0:
        return None
    right = int(np.searchsorted(x, at, "left"))
    if right <= 0:
        return 0
    if right >= n:
        return n - 1
    return right - 1 if at - x[right - 1] <= x[right] - at else right
