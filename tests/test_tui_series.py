"""Chart numerics: debiased EMA, min/max downsampling, percentile y-range, heatmap resizing."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tui.series import Series, downsample_minmax, ema_debiased, rate_per_s, resize_max, y_range
from tui.widgets.heatmap import render_shades


def reference_ema(values: list[float], weight: float) -> list[float]:
    """TensorBoard's loop, written plainly."""
    out, last = [], 0.0
    for i, value in enumerate(values):
        last = last * weight + (1 - weight) * value
        out.append(last / (1 - weight ** (i + 1)))
    return out


@pytest.mark.parametrize("weight", [0.0, 0.1, 0.6, 0.9, 0.99, 0.999])
def test_ema_matches_tensorboard_loop(weight: float) -> None:
    rng = np.random.default_rng(0)
    values = list(rng.normal(1.0, 0.3, 5000))
    expected = values if weight == 0 else reference_ema(values, weight)
    np.testing.assert_allclose(ema_debiased(np.array(values), weight), expected, rtol=1e-9, atol=1e-9)


def test_ema_is_debiased_from_the_first_point() -> None:
    assert ema_debiased(np.array([5.0, 5.0, 5.0]), 0.9).tolist() == pytest.approx([5.0, 5.0, 5.0])


def test_downsample_keeps_spikes_and_bounds_point_count() -> None:
    steps = np.arange(100_000, dtype=float)
    values = np.ones_like(steps)
    values[54_321] = 50.0
    values[77_777] = -3.0
    xs, ys = downsample_minmax(steps, values, 80)
    assert len(xs) == len(ys) == 160
    assert ys.max() == 50.0 and ys.min() == -3.0
    assert xs[0] == 0 and xs[-1] == 99_999 and np.all(np.diff(xs) >= 0)


def test_downsample_leaves_short_series_alone() -> None:
    xs, ys = downsample_minmax(np.arange(10.0), np.arange(10.0), 80)
    assert xs.tolist() == list(range(10))


def test_y_range_ignores_outliers() -> None:
    values = np.concatenate([np.full(1000, 1.0) + np.linspace(0, 0.1, 1000), [1e6]])
    low, high = y_range(values)
    assert 0.9 < low < 1.0 and 1.1 < high < 1.2


def test_y_range_of_a_flat_line_is_not_empty() -> None:
    low, high = y_range(np.full(10, 2.0))
    assert low < 2.0 < high


def test_series_grows_and_skips_non_finite() -> None:
    series = Series(capacity=2)
    series.append_many([1, 2, 3], [0.5, float("nan"), 0.25])
    series.append_many([4], [float("inf")])
    assert series.steps.tolist() == [1, 3] and series.values.tolist() == [0.5, 0.25]
    assert series.last() == 0.25


def test_million_points_smooth_and_downsample_fast() -> None:
    steps = np.arange(1_000_000, dtype=float)
    values = np.random.default_rng(1).random(1_000_000)
    started = time.perf_counter()
    smoothed = ema_debiased(values, 0.99)
    xs, ys = downsample_minmax(steps, smoothed, 120)
    y_range(ys)
    assert time.perf_counter() - started < 1.5
    assert len(xs) == 240


def test_resize_max_keeps_a_thin_diagonal() -> None:
    diagonal = np.eye(500)
    small = resize_max(diagonal, 10, 40)
    assert small.shape == (10, 40)
    assert all(small[i].max() == 1.0 for i in range(10))  # every row still has its piece of the line


def test_resize_max_grows_small_matrices() -> None:
    assert resize_max(np.array([[1.0, 2.0]]), 2, 4).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]


def test_shades_put_the_first_row_at_the_bottom() -> None:
    matrix = np.zeros((4, 4))
    matrix[0, 0] = 1.0  # first decoder frame / first text position: bottom-left
    lines = render_shades(matrix, 4, 4)
    assert lines[-1][0] == "█" and lines[0] == "    "


def test_rate_needs_two_distinct_points() -> None:
    assert rate_per_s(np.array([1.0]), np.array([10.0])) is None
    assert rate_per_s(np.array([0.0, 10.0]), np.array([0.0, 50.0])) == 5.0
