"""Interval arithmetic: Wilson bounds worked out by hand, the bootstrap on known cases."""

from __future__ import annotations

import math

import pytest

from equilibrate.errors import ConfigError
from equilibrate.evaluate.intervals import bootstrap_mean_of_means, proportion, wilson_interval


def test_wilson_seven_of_ten_by_hand() -> None:
    # z = 1.959964, z^2 = 3.841459, n = 10, p = 0.7
    # denominator 1 + z^2/n = 1.3841459; centre (0.7 + z^2/20) / 1.3841459 = 0.644490
    # half-width z * sqrt(0.7*0.3/10 + z^2/400) / 1.3841459 = 1.959964 * 0.174939 / 1.3841459
    #           = 0.247714  ->  (0.396776, 0.892204)
    low, high = wilson_interval(7, 10)
    assert low == pytest.approx(0.396776, abs=1e-5)
    assert high == pytest.approx(0.892204, abs=1e-5)


def test_wilson_zero_of_ten_by_hand() -> None:
    # p = 0: centre = half-width = (z^2/20) / 1.3841459 = 0.138767 -> (0, 0.277534)
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.277534, abs=1e-5)
    # and symmetric at the other end
    low, high = wilson_interval(10, 10)
    assert (low, high) == pytest.approx((1 - 0.277534, 1.0), abs=1e-5)


def test_proportion_and_empty_and_bad_counts() -> None:
    est = proportion(3, 4)
    assert est.value == 0.75 and est.n == 4 and est.ci_low < 0.75 < est.ci_high
    empty = proportion(0, 0)
    assert empty.n == 0 and math.isnan(empty.value) and math.isnan(empty.ci_low)
    with pytest.raises(ConfigError, match="successes"):
        wilson_interval(5, 4)


def test_bootstrap_is_mean_of_means_not_pooled_mean() -> None:
    # one benchmark all right (1 item), one all wrong (3 items): mean of means 0.5, pooled 0.25.
    est = bootstrap_mean_of_means([[1], [0, 0, 0]], num_resamples=200, seed=0)
    assert est.value == 0.5 and est.n == 4
    # every item in a group is the same, so every resample gives 0.5 as well
    assert (est.ci_low, est.ci_high) == (0.5, 0.5)


def test_bootstrap_two_items_known_distribution() -> None:
    # Resampling [0, 1] twice gives means 0, 0.5, 1 with probability 1/4, 1/2, 1/4, so the
    # 2.5th percentile is 0 and the 97.5th is 1.
    est = bootstrap_mean_of_means([[0, 1]], num_resamples=4000, seed=1)
    assert est.value == 0.5
    assert (est.ci_low, est.ci_high) == (0.0, 1.0)


def test_bootstrap_matches_normal_width_and_is_seeded() -> None:
    # 50 of 100: standard error sqrt(0.25/100) = 0.05, a 95% interval about 0.5 +- 0.098.
    data = [[1] * 50 + [0] * 50]
    est = bootstrap_mean_of_means(data, num_resamples=3000, seed=3)
    assert est.ci_low == pytest.approx(0.402, abs=0.02)
    assert est.ci_high == pytest.approx(0.598, abs=0.02)
    assert bootstrap_mean_of_means(data, num_resamples=3000, seed=3) == est
    with pytest.raises(ConfigError, match="num_resamples"):
        bootstrap_mean_of_means(data, num_resamples=0)
