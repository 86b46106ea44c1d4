"""95% intervals: Wilson for one proportion, a seeded bootstrap for a mean of benchmark scores.

Every score in the evaluation is a share of items (prompts answered safely, questions answered
correctly), so a single benchmark gets the Wilson score interval. The helpful average is the
unweighted mean of several benchmark accuracies; its interval comes from a stratified bootstrap that
resamples the items of each benchmark separately (so each benchmark keeps its size) and takes the
2.5th and 97.5th percentiles of the resampled averages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from equilibrate.errors import ConfigError

Z_95 = 1.959963984540054  # the 97.5th percentile of the standard normal distribution


@dataclass(frozen=True)
class Estimate:
    """A score with its 95% interval; all three in the same unit (a fraction in [0, 1]).

    ``n`` is the number of items the score rests on. An estimate from zero items has NaN everywhere.
    """

    value: float
    ci_low: float
    ci_high: float
    n: int


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` out of ``n`` trials.

    With p = successes / n the bounds are
    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``.
    Unlike the normal ("Wald") interval it stays inside [0, 1] and does not collapse to a point
    at 0 % or 100 %. Returns ``(nan, nan)`` when ``n`` is 0.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ConfigError("successes", f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # Clamp rounding noise at the ends (p = 0 gives a lower bound of about -1e-17).
    return (max(0.0, centre - half), min(1.0, centre + half))


def proportion(successes: int, n: int) -> Estimate:
    """The share ``successes / n`` with its Wilson 95% interval (NaN when ``n`` is 0)."""
    low, high = wilson_interval(successes, n)
    value = successes / n if n else math.nan
    return Estimate(value=value, ci_low=low, ci_high=high, n=n)


def bootstrap_mean_of_means(
    groups: Sequence[Sequence[float]],
    num_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """The unweighted mean of the group means, with a stratified percentile-bootstrap interval.

    Args:
        groups: one sequence of per-item outcomes per benchmark (0/1 for correct, or any number).
            Empty groups are ignored.
        num_resamples: bootstrap replicates.
        seed: seeds ``numpy.random.default_rng``; the same seed gives the same interval.
        level: the interval's coverage (0.95 for a 95% interval).

    Returns:
        ``Estimate(value, ci_low, ci_high, n)`` where value is the mean over groups of each group's
        mean and ``n`` the total number of items.
    """
    if num_resamples < 1:
        raise ConfigError("num_resamples", f"must be at least 1, got {num_resamples}")
    if not 0.0 < level < 1.0:
        raise ConfigError("level", f"must lie strictly between 0 and 1, got {level}")
    arrays = [np.asarray(g, dtype=float) for g in groups if len(g) > 0]
    total = int(sum(a.size for a in arrays))
    if not arrays:
        return Estimate(math.nan, math.nan, math.nan, 0)
    value = float(np.mean([a.mean() for a in arrays]))
    rng = np.random.default_rng(seed)
    replicate_means = np.zeros(num_resamples)
    for a in arrays:
        picks = rng.integers(0, a.size, size=(num_resamples, a.size))  # (num_resamples, n_group)
        replicate_means += a[picks].mean(axis=1)
    replicate_means /= len(arrays)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(replicate_means, [alpha, 1.0 - alpha])
    return Estimate(value=value, ci_low=float(low), ci_high=float(high), n=total)
