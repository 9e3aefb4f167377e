"""Scoring as the protocol does (``harness.engine.inference``): validation and TTA."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from harness import protocol as protocols
from harness.classes import CLASSES
from harness.engine.control import StopRequested
from harness.engine.device import Placement
from harness.engine.inference import TTA_CHOICES, evaluate, out_of_fold, tta_logits
from harness.errors import HarnessError
from harness.metric.dice import DiceAccumulator, logits_to_masks, logits_to_probabilities

CPU = torch.device("cpu")
N, SIZE = 5, 8


class Images(torch.utils.data.Dataset):
    """An evaluation set of ``N`` random images, each with its truth (what EvalDataset gives)."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.inputs = torch.rand(N, 1, SIZE, SIZE, generator=generator)
        self.truths = torch.rand(N, len(CLASSES), SIZE, SIZE, generator=generator) > 0.5
        self.paths = [Path(f"image{i}.png") for i in range(N)]

    def __len__(self) -> int:
        return N

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.inputs[index], index

    def truth(self, index: int, size: tuple[int, int] | None = None) -> torch.Tensor:
        assert size is None
        return self.truths[index].to(torch.uint8)


class Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, len(CLASSES), 3, padding=1)
        torch.nn.init.normal_(self.conv.weight, generator=torch.Generator().manual_seed(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.fixture
def protocol() -> protocols.Protocol:
    proto = protocols.load("tiny")
    return dataclasses.replace(proto, batch_size=2, num_workers=0, eval_resolution="original")


def test_scores_each_image_as_the_metric_does(protocol: protocols.Protocol) -> None:
    data, model = Images(), Model()
    model.train()
    scores = evaluate(model, data, protocol, Placement(CPU))
    assert model.training  # handed back in training mode
    expected = DiceAccumulator(CLASSES, threshold=protocol.threshold)
    with torch.no_grad():
        model.eval()
        for i in range(N):
            expected.add_logits(
                model(data.inputs[i : i + 1])[0], data.truth(i), name=f"image{i}.png"
            )
    assert scores.per_image().tolist() == expected.per_image().tolist()
    assert scores.mean() == expected.mean()


def test_a_stop_request_abandons_validation(protocol: protocols.Protocol) -> None:
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) == 2  # before the second batch

    model = Model()
    with pytest.raises(StopRequested):
        evaluate(model, Images(), protocol, Placement(CPU), should_stop=should_stop)
    assert len(asked) == 2 and model.training


def test_flip_tta_averages_the_mirrored_logits() -> None:
    class Ramp(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.arange(x.shape[-1], dtype=x.dtype)

    x = torch.zeros(1, 1, 2, 4)
    ramp = torch.arange(4.0)
    assert torch.equal(tta_logits(Ramp(), x, "none"), x + ramp)
    torch.testing.assert_close(tta_logits(Ramp(), x, "flip"), x + (ramp + ramp.flip(-1)) / 2)
    torch.testing.assert_close(tta_logits(Ramp(), x, "hflip"), x + (ramp + ramp.flip(-1)) / 2)
    with pytest.raises(HarnessError, match="unknown tta 'rot'"):
        tta_logits(Ramp(), x, "rot")
    assert TTA_CHOICES == ("none", "flip")


def test_validation_with_flip_tta_scores_the_averaged_logits(protocol: protocols.Protocol) -> None:
    data, model = Images(), Model()
    plain = evaluate(model, data, protocol, Placement(CPU))
    flipped = evaluate(model, data, protocol, Placement(CPU), tta="flip")
    expected = DiceAccumulator(CLASSES, threshold=protocol.threshold)
    with torch.no_grad():
        model.eval()
        for i in range(N):
            logits = tta_logits(model, data.inputs[i : i + 1], "flip")[0]
            expected.add_logits(logits, data.truth(i))
    assert flipped.per_image().tolist() == expected.per_image().tolist()
    assert flipped.per_image().tolist() != plain.per_image().tolist()


def test_out_of_fold_gives_the_probabilities_validation_thresholds(
    protocol: protocols.Protocol,
) -> None:
    """Kept predictions (``--keep-predictions``) are what ``evaluate`` scores, per TTA."""
    data, model = Images(), Model()
    model.train()
    kept = list(out_of_fold(model, data, protocol, Placement(CPU), {"none": "none", "h": "hflip"}))
    assert model.training  # left as it was found
    assert [name for name, _ in kept] == [p.name for p in data.paths]
    for tta, name in (("none", "none"), ("h", "flip")):
        scores = DiceAccumulator(CLASSES, threshold=protocol.threshold)
        for i, (_, by_tta) in enumerate(kept):
            assert by_tta[tta].dtype == torch.float32 and by_tta[tta].shape == (29, SIZE, SIZE)
            scores.add_masks(by_tta[tta] > protocol.threshold, data.truth(i))
        expected = evaluate(model, data, protocol, Placement(CPU), tta=name)
        assert scores.per_image().tolist() == expected.per_image().tolist()


def test_probabilities_are_what_the_masks_threshold() -> None:
    logits = torch.randn(29, 6, 6, generator=torch.Generator().manual_seed(3)) * 3
    for size in ((6, 6), (13, 11)):
        probabilities = logits_to_probabilities(logits, size)
        assert torch.equal(probabilities > 0.5, logits_to_masks(logits, size, 0.5))
