"""Is a difference real, or within run-to-run noise? Every noise rule of the harness is here.

Within a leaderboard, a row against the leader: with shared seeds (n >= 2) the test is a
paired t-test across seeds (scipy); with a single seed it is a paired bootstrap over the
validation images (the same images are scored for every entry of a benchmark). Both are
deterministic: the bootstrap uses a fixed random state, so the same records always give
the same marks (``METHOD``).

Between two tables (``harness compare``), the same entry's row in each: the runs are not
paired, so the rule is on the rows' published ± alone (``DIFFERENCE_METHOD``,
``difference_within_noise``).

A verdict is worded here and nowhere else (``verdict``, ``difference_verdict``): a
leaderboard, an ablation, their pages and ``harness compare`` show these words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
N_RESAMPLES = 2000
#: Standard errors of a difference that a real one exceeds (two-sided 95 %).
Z95 = 1.96

METHOD = (
    "A row marked ≈ is within noise of the leader: a paired t-test over the seeds both "
    f"rows share gives p ≥ {ALPHA} or, with one shared seed, the 95 % paired bootstrap "
    f"interval ({N_RESAMPLES} resamples of the validation images) of the difference "
    "contains 0."
)

DIFFERENCE_METHOD = (
    "A difference between the same entry's rows in two tables is within noise when it is at "
    f"most {Z95} standard errors of the difference, sqrt(se_a² + se_b²); a row's standard "
    "error is its ± (the standard deviation over its n seeds) over sqrt(n) or, for a row "
    "marked ᵇ, its ± itself (already a bootstrap standard error over images)."
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
    from scipy import stats  # about a second to import: only testing rows pays for it

    diff = np.asarray(leader, dtype=float) - np.asarray(other, dtype=float)
    if np.allclose(diff, diff[0]):
        return Comparison("t-test", within_noise=bool(diff[0] == 0), p_value=None)
    p = float(stats.ttest_rel(leader, other).pvalue)
    return Comparison("t-test", within_noise=p >= ALPHA, p_value=p)


def compare_images(leader: Sequence[float], other: Sequence[float]) -> Comparison:
    """Paired bootstrap of the mean per-image Dice difference over the same images."""
    from scipy import stats

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


def row_standard_error(noise: float | None, n: int, noise_is_se: bool) -> float | None:
    """A table row's standard error of its mean Dice: its ± over sqrt(n) (``noise`` a std over
    ``n`` seeds) or, ``noise_is_se`` (ᵇ), ``noise`` itself; None when the row has no ±."""
    if noise is None:
        return None
    return noise if noise_is_se else noise / math.sqrt(max(n, 1))


def difference_within_noise(
    difference: float, se_a: float | None, se_b: float | None
) -> bool | None:
    """Whether ``difference`` (B minus A) is within noise of two unpaired rows with standard
    errors ``se_a`` and ``se_b`` (``DIFFERENCE_METHOD``); None when either is unknown."""
    if se_a is None or se_b is None:
        return None
    return abs(difference) <= Z95 * math.hypot(se_a, se_b)


# How a verdict is worded: here only, for every table, page and terminal.

#: The verdict of the row every other is tested against: a leaderboard's #1 ...
LEADER = "leader"
#: ... and an ablation's best value.
BEST = "best"


def verdict(comparison: Comparison | None, reference: str = LEADER) -> str:
    """A row's verdict against the reference row (``LEADER`` or ``BEST``; ``comparison``
    None: the row is the reference): ``≈`` within noise of it, ``below`` it, or ``?`` when
    no test could be made (no seed or image in common)."""
    if comparison is None:
        return reference
    if comparison.method == "n/a":
        return "?"
    return "≈" if comparison.within_noise else "below"


def standing_text(word: str) -> str:
    """A row's verdict against the leader of a table it is not in yet, as a clause: ``within
    noise of #1``, ``below #1 beyond noise``, ``would lead it``, ``no test against #1``."""
    return {
        LEADER: "would lead it",
        "≈": "within noise of #1",
        "below": "below #1 beyond noise",
    }.get(word, "no test against #1 (no seed or image in common)")


def difference_verdict(within_noise: bool | None) -> str:
    """The same entry's rows in two tables (``difference_within_noise``), in words: ``within
    noise``, ``real``, or ``noise unknown`` when a row has no ±."""
    return {True: "within noise", False: "real", None: "noise unknown"}[within_noise]
