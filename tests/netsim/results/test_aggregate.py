"""Means over seeds and their 95% intervals, against closed forms and by coverage."""

import math

import numpy as np
import pytest

from netsim.results import aggregate


def test_t_quantiles_match_their_closed_forms():
    # df 1: tan(pi (p - 1/2)); df 2: (2p - 1) sqrt(2 / (4p(1 - p))); df 4: Hill's closed form
    p = 0.975
    a = 4 * p * (1 - p)
    exact = {
        1: math.tan(math.pi * (p - 0.5)),
        2: (2 * p - 1) * math.sqrt(2 / a),
        4: math.sqrt(4 / math.sqrt(a) * math.cos(math.acos(math.sqrt(a)) / 3) - 4),
    }
    for df, t in exact.items():
        assert aggregate.t_quantile(df) == pytest.approx(t, rel=1e-9)
    # wider than the normal quantile for few seeds, and tending to it
    assert aggregate.t_quantile(30) > aggregate.t_quantile(1000) > 1.959964


def test_mean_ci_is_students_interval_and_skips_missing_values():
    mean, half, n = aggregate.mean_ci([1.0, None, 2.0, float("nan"), 3.0])
    assert (mean, n) == (2.0, 3)
    assert half == pytest.approx(aggregate.t_quantile(2) * 1.0 / math.sqrt(3))
    assert aggregate.mean_ci([0.5]) == (0.5, None, 1)
    assert aggregate.mean_ci([None]) == (None, None, 0)


def test_the_interval_covers_the_true_mean_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    trials = 4000
    covered = 0
    for _ in range(trials):
        mean, half, _ = aggregate.mean_ci(rng.normal(10.0, 2.0, size=3))
        covered += abs(mean - 10.0) <= half
    assert 0.935 < covered / trials < 0.965  # 3.4 standard errors either side of 0.95


def test_text_shows_mean_and_half_width_in_the_columns_format():
    assert aggregate.text([0.5, 0.6, 0.7], ".2f", 100) == "60.00 ± 24.84"
    assert aggregate.text([0.5], ".2f", 100) == "50.00"
    assert aggregate.text([], ".2f") == "-"


def test_band_averages_aligned_curves_point_by_point():
    x = np.array([0.0, 1.0, 2.0])
    grid, mean, lo, hi = aggregate.band([(x, [1.0, 2.0, 3.0]), (x, [3.0, 4.0, 5.0])])
    np.testing.assert_array_equal(grid, x)
    np.testing.assert_allclose(mean, [2.0, 3.0, 4.0])
    half = aggregate.t_quantile(1) * math.sqrt(2.0) / math.sqrt(2)  # s = sqrt(2) at each x
    np.testing.assert_allclose(hi - mean, half)
    np.testing.assert_allclose(mean - lo, half)


def test_band_interpolates_onto_the_range_every_curve_covers():
    a = (np.array([0.0, 2.0, 4.0]), np.array([0.0, 2.0, 4.0]))  # y = x
    b = (np.array([1.0, 3.0]), np.array([2.0, 6.0]))  # y = 2x
    grid, mean, _, _ = aggregate.band([a, b])
    np.testing.assert_array_equal(grid, [1.0, 2.0, 3.0])  # never extrapolates a curve
    np.testing.assert_allclose(mean, 1.5 * grid)


def test_one_curve_has_no_band():
    grid, mean, lo, hi = aggregate.band([([0.0, 1.0], [1.0, 2.0])])
    np.testing.assert_array_equal(lo, mean)
    np.testing.assert_array_equal(hi, mean)
