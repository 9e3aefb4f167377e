"""(b) RLE encoding of the 29 masks of one 2048² image, on one core: target at most 35 ms.

The harness's encoder (``harness.metric.rle.encode``) looks only at the band of rows holding
foreground and diffs it vectorized; the competition's reference encoder pads and diffs
the whole flattened mask.  Both must give the same strings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness.data.annotations import rasterize, read_annotation
from harness.data.layout import label_path, list_images
from harness.metric.rle import encode

GROUP = "rle: encode the 29 masks of one 2048x2048 image"


def reference_encode(mask: np.ndarray) -> str:
    """The encoder published with the competition."""
    pixels = mask.flatten()
    pixels = np.concatenate([[0], pixels, [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


@pytest.fixture
def one_core() -> Iterator[None]:
    """Pin the process to one CPU while measuring (where the OS allows it)."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


@pytest.fixture(scope="module")
def masks(hands_2048: Path) -> np.ndarray:
    image = list_images(hands_2048)[0]
    return rasterize(read_annotation(label_path(image))).astype(bool)


@pytest.mark.benchmark(group=GROUP)
def test_harness_rle(benchmark, masks: np.ndarray, one_core: None) -> None:
    encoded = benchmark(lambda: [encode(m) for m in masks])
    assert encoded == [reference_encode(m) for m in masks]


@pytest.mark.benchmark(group=GROUP)
def test_reference_rle(benchmark, masks: np.ndarray, one_core: None) -> None:
    encoded = benchmark(lambda: [reference_encode(m) for m in masks])
    assert all(encoded)
