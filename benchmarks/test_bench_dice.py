"""(c) Dice of one 29x2048² image: the harness against torchmetrics and MONAI.

Same prediction and truth for all three (the truth, and the truth shifted by a few pixels
with noise, so no class scores 1 and none is empty); each library gets the dtype it is
fastest with, converted outside the timing.  The values agree to 1e-6: the competition's
1e-4 smoothing moves a Dice of bones this size by far less.  Target: at least 5x faster.
torchmetrics and MONAI are optional (the ``bench`` extra); their benchmarks skip without.
With ``--benchmark-disable`` (``make test``) the check runs on every second row and column
(1024²), because the two libraries take seconds per call at full size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harness.data.annotations import rasterize, read_annotation
from harness.data.layout import label_path, list_images
from harness.metric.dice import dice_scores

GROUP = "dice: one 29x2048x2048 image, per-class scores"


@pytest.fixture(scope="module")
def pair(hands_2048: Path, request: pytest.FixtureRequest) -> tuple[torch.Tensor, torch.Tensor]:
    image = list_images(hands_2048)[0]
    truth = rasterize(read_annotation(label_path(image))).astype(bool)
    if request.config.getoption("benchmark_disable", default=False):
        truth = np.ascontiguousarray(truth[:, ::2, ::2])
    rng = np.random.default_rng(0)
    pred = np.roll(truth, (3, -2), axis=(1, 2))
    pred ^= rng.random(pred.shape) < 0.0005
    return torch.from_numpy(pred), torch.from_numpy(truth)


@pytest.fixture(scope="module")
def expected(pair: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
    pred, truth = (t.numpy() for t in pair)
    inter = np.logical_and(pred, truth).sum(axis=(1, 2))
    total = pred.sum(axis=(1, 2)) + truth.sum(axis=(1, 2))
    assert (truth.sum(axis=(1, 2)) > 0).all() and (inter < total / 2).all()
    return (2 * inter + 1e-4) / (total + 1e-4)


@pytest.mark.benchmark(group=GROUP)
def test_harness_dice(benchmark, pair, expected: np.ndarray) -> None:
    pred, truth = pair
    scores = benchmark(dice_scores, pred, truth)
    np.testing.assert_allclose(scores.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.benchmark(group=GROUP)
def test_torchmetrics_dice(benchmark, pair, expected: np.ndarray) -> None:
    pytest.importorskip("torchmetrics")
    from torchmetrics.functional.segmentation import dice_score

    pred, truth = (t[None].long() for t in pair)
    scores = benchmark(
        dice_score,
        pred,
        truth,
        num_classes=pred.shape[1],
        include_background=True,
        average="none",
        input_format="one-hot",
    )
    np.testing.assert_allclose(scores[0].double().numpy(), expected, rtol=0, atol=1e-6)


@pytest.mark.benchmark(group=GROUP)
def test_monai_dice(benchmark, pair, expected: np.ndarray) -> None:
    pytest.importorskip("monai")
    from monai.metrics import compute_dice

    pred, truth = (t[None].float() for t in pair)
    scores = benchmark(compute_dice, pred, truth, include_background=True)
    np.testing.assert_allclose(scores[0].double().numpy(), expected, rtol=0, atol=1e-6)
