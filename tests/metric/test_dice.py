"""The metric against hand-computed numbers: formula, averaging order, upsampling, threshold."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.classes import CLASSES, NUM_CLASSES
from harness.metric.dice import EPS, DiceAccumulator, dice_scores


def masks(*channels: list[list[int]]) -> torch.Tensor:
    return torch.tensor(channels, dtype=torch.bool)


def test_empty_on_empty_is_one() -> None:
    empty = torch.zeros(2, 4, 4, dtype=torch.bool)
    scores = dice_scores(empty, empty)
    assert scores.dtype == torch.float64
    assert scores.tolist() == [1.0, 1.0]


def test_empty_prediction_on_truth_is_eps_over_truth() -> None:
    truth = torch.zeros(1, 4, 4, dtype=torch.bool)
    truth[0, :2, :3] = True  # |G| = 6
    score = dice_scores(torch.zeros_like(truth), truth)
    assert score.item() == pytest.approx(EPS / (6 + EPS), rel=1e-12)
    assert score.item() < 2e-5


def test_partial_overlap_by_hand() -> None:
    pred = masks([[1, 1, 1, 0], [0, 0, 0, 0]])  # |P| = 3
    truth = masks([[0, 1, 1, 1], [0, 1, 0, 0]])  # |G| = 4, |P∩G| = 2
    assert dice_scores(pred, truth).item() == pytest.approx((4 + EPS) / (7 + EPS), rel=1e-12)


def test_overlapping_classes_are_scored_independently() -> None:
    # Both classes claim the same pixels (carpal bones overlap); neither steals from the other.
    truth = masks([[1, 1, 0, 0]], [[0, 1, 1, 0]])
    pred = masks([[1, 1, 1, 0]], [[0, 1, 1, 0]])
    scores = dice_scores(pred, truth).tolist()
    assert scores[0] == pytest.approx((4 + EPS) / (5 + EPS), rel=1e-12)
    assert scores[1] == pytest.approx(1.0)


def test_uint8_masks_read_as_nonzero() -> None:
    pred = torch.tensor([[[0, 3, 1]]], dtype=torch.uint8)
    truth = torch.tensor([[[0, 1, 0]]], dtype=torch.uint8)
    assert dice_scores(pred, truth).item() == pytest.approx((2 + EPS) / (3 + EPS))


def test_mean_is_per_image_then_per_class_not_pooled() -> None:
    acc = DiceAccumulator(["a", "b"])
    big = torch.ones(1, 10, 10, dtype=torch.bool)
    small = torch.zeros(1, 10, 10, dtype=torch.bool)
    small[0, 0, 0] = True
    # Image 1: class a perfect on 100 pixels, class b missed (1 pixel of truth, empty prediction).
    acc.add_masks(torch.cat([big, torch.zeros_like(small)]), torch.cat([big, small]), name="i1")
    # Image 2: class a empty prediction on 1 pixel of truth; class b empty on empty.
    acc.add_masks(torch.zeros(2, 10, 10, dtype=torch.bool), torch.cat([small, ~big]), name="i2")
    miss = EPS / (1 + EPS)
    expected = {"a": (1.0 + miss) / 2, "b": (miss + 1.0) / 2}
    assert acc.count == 2 and acc.names == ("i1", "i2")
    assert acc.per_class() == pytest.approx(expected, rel=1e-12)
    assert acc.mean() == pytest.approx((expected["a"] + expected["b"]) / 2, rel=1e-12)
    np.testing.assert_allclose(acc.per_image(), [[1.0, miss], [miss, 1.0]], rtol=1e-12)
    # Pooling pixel counts over images first would give a≈200/201 instead: not the metric.
    pooled_a = (2 * 100 + EPS) / (100 + 101 + EPS)
    assert abs(acc.per_class()["a"] - pooled_a) > 0.4


def test_per_class_means_with_unequal_class_difficulty() -> None:
    acc = DiceAccumulator(["a", "b", "c"])
    rows = []
    rng = np.random.default_rng(0)
    for _ in range(3):
        pred = torch.from_numpy(rng.random((3, 6, 6)) > 0.5)
        truth = torch.from_numpy(rng.random((3, 6, 6)) > 0.6)
        rows.append(acc.add_masks(pred, truth).numpy())
        p, g = pred.numpy(), truth.numpy()
        inter = (p & g).sum(axis=(1, 2))
        by_hand = (2 * inter + EPS) / (p.sum(axis=(1, 2)) + g.sum(axis=(1, 2)) + EPS)
        np.testing.assert_allclose(rows[-1], by_hand, rtol=1e-15)
    per_class = np.mean(rows, axis=0)
    assert list(acc.per_class().values()) == pytest.approx(per_class.tolist(), rel=1e-15)
    assert acc.mean() == pytest.approx(per_class.mean(), rel=1e-15)


def test_logits_are_upsampled_bilinearly_then_thresholded() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(NUM_CLASSES, 8, 12, generator=gen)
    truth = torch.rand(NUM_CLASSES, 16, 24, generator=gen) > 0.5
    explicit = (
        torch.sigmoid(
            F.interpolate(logits[None], size=(16, 24), mode="bilinear", align_corners=False)[0]
        )
        > 0.5
    )
    acc = DiceAccumulator()
    scores = acc.add_logits(logits, truth.to(torch.uint8))
    torch.testing.assert_close(scores, dice_scores(explicit, truth), rtol=0, atol=0)
    # Half-precision logits are cast to float32 before upsampling.
    half = DiceAccumulator().add_logits(logits.to(torch.bfloat16), truth)
    explicit_bf16 = (
        F.interpolate(logits.to(torch.bfloat16).float()[None], size=(16, 24), mode="bilinear")[0]
        .sigmoid()
        .gt(0.5)
    )
    torch.testing.assert_close(half, dice_scores(explicit_bf16, truth), rtol=0, atol=0)
    assert list(acc.per_class()) == list(CLASSES)


def test_zero_logit_is_background() -> None:
    truth = torch.ones(1, 2, 2, dtype=torch.bool)
    logits = torch.tensor([[[0.0, 0.0], [0.0, 1e-3]]])  # sigmoid(0) == 0.5 exactly
    acc = DiceAccumulator(["a"])
    score = acc.add_logits(logits, truth)
    # Only the positive logit counts: |P| = 1, |G| = 4, |P∩G| = 1.
    assert score.item() == pytest.approx((2 + EPS) / (5 + EPS), rel=1e-12)


def test_logits_are_not_modified_in_place() -> None:
    logits = torch.randn(2, 4, 4)
    before = logits.clone()
    DiceAccumulator(["a", "b"]).add_logits(logits, torch.zeros(2, 4, 4, dtype=torch.bool))
    assert torch.equal(logits, before)


def test_counts_are_exact_on_large_masks() -> None:
    # 2048² with all but one pixel set: float32 sums would round these counts.
    truth = torch.ones(1, 2048, 2048, dtype=torch.bool)
    pred = truth.clone()
    pred[0, 0, 0] = False
    n = 2048 * 2048
    expected = (2 * (n - 1) + EPS) / ((n - 1) + n + EPS)
    assert dice_scores(pred, truth).item() == expected


def test_shape_mismatch_and_empty_accumulator_raise() -> None:
    acc = DiceAccumulator(["a"])
    with pytest.raises(ValueError):
        acc.add_masks(torch.zeros(2, 3, 3, dtype=torch.bool), torch.zeros(2, 3, 3))
    with pytest.raises(ValueError):
        dice_scores(torch.zeros(1, 3, 3, dtype=torch.bool), torch.zeros(1, 3, 4, dtype=torch.bool))
    assert acc.per_image().shape == (0, 1)
    with pytest.raises(ValueError):
        acc.mean()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(NUM_CLASSES, 64, 64, generator=gen)
    truth = torch.rand(NUM_CLASSES, 128, 128, generator=gen) > 0.5
    cpu = DiceAccumulator().add_logits(logits, truth)
    gpu = DiceAccumulator().add_logits(logits.cuda().half(), truth)
    cpu_half = DiceAccumulator().add_logits(logits.half(), truth)
    # Device kernels may differ in the last bit, flipping a pixel that sits on the threshold.
    assert gpu.device.type == "cpu"
    torch.testing.assert_close(gpu, cpu_half, rtol=0, atol=1e-3)
    assert cpu.shape == gpu.shape
