"""Scoring a model the way the protocol does: validation Dice and test-time augmentation.

``tta_logits`` is the one place that applies test-time augmentation, for validation and
for ``harness predict --tta flip`` alike; ``evaluate`` scores a validation set image by
image at each image's original resolution, sharded over the ranks of a data-parallel run.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Subset

from harness.classes import CLASSES
from harness.data.datasets import EvalDataset
from harness.engine import distributed
from harness.engine.control import StopRequested
from harness.engine.device import Placement
from harness.engine.distributed import World
from harness.engine.loader import worker_init
from harness.errors import HarnessError
from harness.metric.dice import DiceAccumulator
from harness.protocol import Protocol

TTA_CHOICES = ("none", "flip")


def tta_logits(model: torch.nn.Module, inputs: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """The model's logits for ``(N, C, H, W)`` inputs under a test-time augmentation.

    ``"none"``: the logits as they are.  ``"flip"``: the mean, in float32, of the logits of
    the inputs and of the horizontally mirrored inputs mirrored back, so the threshold
    applies to the averaged logits.
    """
    if tta == "none":
        return model(inputs)
    if tta == "flip":
        plain = model(inputs).float()
        mirrored = model(torch.flip(inputs, dims=(-1,))).float()
        return plain.add_(torch.flip(mirrored, dims=(-1,))).mul_(0.5)
    raise HarnessError(f"--tta {tta!r}: choose one of {', '.join(TTA_CHOICES)}")


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset: EvalDataset,
    protocol: Protocol,
    placement: Placement,
    *,
    should_stop: Callable[[], bool] | None = None,
    tta: str = "none",
    world: World | None = None,
) -> DiceAccumulator:
    """Dice on ``dataset``, one image at a time at its original resolution, the model run as
    ``placement`` says (device, autocast dtype, memory format of the inputs).

    ``should_stop`` is asked before each batch; when it says yes, validation is abandoned
    (``StopRequested``). ``tta="flip"`` averages the logits of each image and of its mirror
    before the threshold, exactly as ``harness predict --tta flip`` does. With an active
    ``world`` each rank scores every ``world.size``-th image and the per-image score rows
    are gathered, so every rank returns what one process scoring all images would, row
    for row.
    """
    world = world or World()
    distributed.broadcast_buffers(model, world)  # every shard scored by rank 0's model
    model.eval()
    scores = DiceAccumulator(CLASSES, threshold=protocol.threshold)
    positions = distributed.shard(len(dataset), world)
    part = Subset(dataset, positions) if world.active else dataset
    loader = DataLoader(
        part,
        batch_size=protocol.batch_size,
        num_workers=protocol.num_workers,
        worker_init_fn=worker_init,
        pin_memory=placement.device.type == "cuda",
    )
    size = None
    if protocol.eval_resolution != "original":
        size = (int(protocol.eval_resolution),) * 2
    for inputs, indices in loader:
        if should_stop is not None and should_stop():
            model.train()
            raise StopRequested
        with placement.autocast():
            inputs = inputs.to(placement.device, memory_format=placement.memory_format)
            logits = tta_logits(model, inputs, tta)
        for row, index in zip(logits, indices.tolist(), strict=True):
            truth = dataset.truth(index, size)  # released after this image
            scores.add_logits(row, truth, name=dataset.paths[index].name)
    model.train()
    if not world.active:
        return scores
    rows = distributed.gather_rows(scores.per_image(), positions, len(dataset), world)
    names = [p.name for p in dataset.paths]
    return DiceAccumulator.from_rows(rows, names, CLASSES, threshold=protocol.threshold)
