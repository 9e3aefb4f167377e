"""RLE: the competition's reference encoder's output, round trips, and strict decoding."""

from __future__ import annotations

import numpy as np
import pytest

from harness.metric.rle import decode, encode


def reference_encode(mask: np.ndarray) -> str:
    """The encoder published with the competition (pad, diff, pair up)."""
    pixels = np.concatenate([[0], mask.flatten(), [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def test_known_small_example() -> None:
    mask = np.array(
        [
            [0, 0, 0, 1],
            [1, 1, 0, 0],
            [0, 0, 0, 0],
            [0, 1, 1, 1],
        ],
        dtype=np.uint8,
    )
    # Pixel 4 starts a run that wraps into row 2 (pixels 4, 5, 6); then 14, 15, 16.
    assert encode(mask) == "4 3 14 3"
    np.testing.assert_array_equal(decode("4 3 14 3", 4, 4), mask.astype(bool))


def test_empty_full_first_and_last_pixel() -> None:
    empty = np.zeros((5, 7), bool)
    assert encode(empty) == ""
    assert not decode("", 5, 7).any() and decode("  ", 5, 7).shape == (5, 7)
    assert encode(~empty) == "1 35"
    corners = empty.copy()
    corners[0, 0] = corners[-1, -1] = True
    assert encode(corners) == "1 1 35 1"
    for m in (empty, ~empty, corners):
        np.testing.assert_array_equal(decode(encode(m), 5, 7), m)


@pytest.mark.parametrize("seed", range(6))
def test_random_round_trip_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 40, 2)
    mask = rng.random((h, w)) < rng.choice([0.02, 0.5, 0.98])
    if seed == 0:
        mask[:, :] = False
        mask[3 % h] = True  # a band of rows only
    text = encode(mask)
    assert text == reference_encode(mask)
    np.testing.assert_array_equal(decode(text, int(h), int(w)), mask)


def test_encode_accepts_non_bool_and_rejects_3d() -> None:
    assert encode(np.array([[0, 2], [0, 255]], np.uint8)) == "2 1 4 1"
    with pytest.raises(ValueError):
        encode(np.zeros((2, 2, 2), bool))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1 2 3", "odd"),
        ("1 x", "integer"),
        ("1.5 2", "integer"),
        ("+1 2", "integer"),
        ("0 2", "start"),
        ("-3 2", "start"),
        ("1 0", "length"),
        ("1 -2", "length"),
        ("10 8", "past"),
        ("17 1", "past"),
        ("5 2 1 1", "sorted"),
        ("1 5 3 1", "overlaps"),
        ("99999999999999999999999 1", "integer"),
    ],
)
def test_malformed_rle_raises(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode(text, 4, 4)


def test_touching_runs_are_allowed() -> None:
    np.testing.assert_array_equal(decode("1 2 3 2", 1, 4), np.ones((1, 4), bool))
