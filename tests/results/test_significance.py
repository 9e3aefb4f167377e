"""The noise marks: paired t-test over seeds, paired bootstrap over images for one seed."""

from __future__ import annotations

import numpy as np

from harness.results.significance import bootstrap_se, compare_images, compare_seeds


def test_clear_difference_over_seeds_is_significant() -> None:
    result = compare_seeds([0.80, 0.82, 0.81], [0.70, 0.71, 0.72])
    assert result.method == "t-test" and not result.within_noise and result.p_value < 0.05


def test_overlapping_seeds_are_within_noise() -> None:
    result = compare_seeds([0.800, 0.820, 0.810], [0.810, 0.800, 0.815])
    assert result.within_noise and result.p_value > 0.5


def test_constant_difference() -> None:
    assert not compare_seeds([0.8, 0.9], [0.7, 0.8]).within_noise
    assert compare_seeds([0.8, 0.9], [0.8, 0.9]).within_noise


def test_bootstrap_over_images() -> None:
    rng = np.random.default_rng(1)
    a = rng.random(12)
    shifted = compare_images(a, a - 0.1 + rng.normal(0, 0.01, 12))
    assert not shifted.within_noise and shifted.interval[0] > 0.05
    noisy = compare_images(a, a + rng.normal(0, 0.05, 12))
    assert noisy.within_noise
    # Deterministic: same input, same interval.
    assert (
        compare_images(a, a + 0.01 * np.arange(12)).interval
        == compare_images(a, a + 0.01 * np.arange(12)).interval
    )


def test_bootstrap_se_matches_the_textbook_value() -> None:
    x = np.random.default_rng(2).normal(0.8, 0.1, 50)
    se = bootstrap_se(x)
    assert abs(se - x.std(ddof=1) / np.sqrt(x.size)) < 0.004
    assert bootstrap_se([0.5]) is None
