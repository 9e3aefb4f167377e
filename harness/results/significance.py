"""Is a leaderboard row really behind the leader, or within run-to-run noise?

With shared seeds (n >= 2) the test is a paired t-test across seeds (scipy); with a
single seed it is a paired bootstrap over the validation images (the same images are
scored for every entry of a benchmark). Both are deterministic: the bootstrap uses a
fixed random state, so the same records always give the same marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
N_RESAMPLES = 2000

METHOD = (
    "A row marked ≈ is within noise of the leader: a paired t-test over the seeds both "
    f"rows share gives p ≥ {ALPHA} or, with one shared seed, the 95 % paired bootstrap "
    f"interval ({N_RESAMPLES} resamples of the validation images) of the difference "
    "contains 0."
)


@dataclass(frozen=True)
class Comparison:
    """A row against the leader: the test used, its p-value or interval, and the verdict."""

    method: str  # "t-test", "bootstrap" or "n/a"
    within_noise: bool
    p_value: float | None = None
    interval: tuple[float, float] | None = None


def paired_seeds(leader: dict[int, float], other: dict[int, float]) -> list[int]:
    return sorted(set(leader) & set(other))


def compare_seeds(leader: Sequence[float], other: Sequence[float]) -> Comparison:
    """Paired t-test on per-seed mean Dice; a constant difference is significant unless 0."""
    diff = np.asarray(leader, dtype=float) - np.asarray(other, dtype=float)
    if np.allclose(diff, diff[0]):
        return Comparison("t-test", within_noise=bool(diff[0] == 0), p_value=None)
    p = float(stats.ttest_rel(leader, other).pvalue)
    return Comparison("t-test", within_noise=p >= ALPHA, p_value=p)


def compare_images(leader: Sequence[float], other: Sequence[float]) -> Comparison:
    """Paired bootstrap of the mean per-image Dice difference over the same images."""
    a = np.asarray(leader, dtype=float)
    b = np.asarray(other, dtype=float)
    if a.shape != b.shape or a.size < 2:
        return Comparison("n/a", within_noise=True)
    diff = a - b
    if np.allclose(diff, diff[0]):
        return Comparison("bootstrap", within_noise=bool(diff[0] == 0), interval=(diff[0],) * 2)
    result = stats.bootstrap(
        (diff,),
        np.mean,
        n_resamples=N_RESAMPLES,
        confidence_level=0.95,
        method="percentile",
        random_state=np.random.default_rng(0),
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return Comparison("bootstrap", within_noise=low <= 0.0 <= high, interval=(low, high))


def bootstrap_se(values: Sequence[float]) -> float | None:
    """Standard error of a mean over images, by bootstrap (the ± of a single-seed row)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None
    rng = np.random.default_rng(0)
    means = x[rng.integers(0, x.size, size=(N_RESAMPLES, x.size))].mean(axis=1)
    return float(means.std(ddof=1))
