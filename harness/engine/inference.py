"""Scoring a model the way the protocol does: validation Dice and test-time augmentation.

``tta_logits`` is the one place that applies test-time augmentation (a ``harness_tta``
plugin's transforms), for validation, ``harness predict --tta`` and kept predictions alike;
``evaluate`` scores a validation set image by image at each image's original resolution,
sharded over the ranks of a data-parallel run; ``out_of_fold`` gives the probabilities it
scores, image by image, under each test-time augmentation (``--keep-predictions``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch.utils.data import DataLoader, Subset

from harness.classes import CLASSES
from harness.components.contracts import Transform, tta_transforms
from harness.components.registry import Registry
from harness.data.datasets import EvalDataset
from harness.engine import distributed
from harness.engine.control import StopRequested
from harness.engine.device import Placement
from harness.engine.distributed import World
from harness.engine.loader import worker_init
from harness.errors import HarnessError
from harness.metric.dice import DiceAccumulator, logits_to_probabilities
from harness.protocol import Protocol

#: An entry's own validation test-time augmentation (``harness run --tta``, in the entry).
TTA_CHOICES = ("none", "flip")
#: A test-time augmentation: a ``harness_tta`` plugin's name, or its transforms.
TTA = str | Sequence[Transform]


def resolve_tta(tta: TTA, registry: Registry | None = None) -> tuple[Transform, ...]:
    """The transforms of ``tta``: none for ``"none"`` (the logits as they are), else the
    named plugin's (``flip`` is ``hflip``'s older name), from ``registry`` or the installed
    plugins."""
    if not isinstance(tta, str):
        return tuple(tta)
    if tta == "none":
        return ()
    return tta_transforms(registry or Registry.load(), tta)


def tta_logits(model: torch.nn.Module, inputs: torch.Tensor, tta: TTA = "none") -> torch.Tensor:
    """The model's logits for ``(N, C, H, W)`` inputs under a test-time augmentation.

    ``"none"`` (or no transforms): the logits as they are. Otherwise, the mean in float32 of
    each transform's inverted logits (``invert(model(apply(inputs)))``), so the threshold
    applies to the averaged logits: ``hflip`` is the mean of the logits of the inputs and
    of the mirrored inputs mirrored back.
    """
    transforms = resolve_tta(tta)
    if not transforms:
        return model(inputs)
    total: torch.Tensor | None = None
    n, _, height, width = inputs.shape
    for transform in transforms:
        logits = transform.invert(model(transform.apply(inputs)))
        if not isinstance(logits, torch.Tensor) or (
            logits.shape[0] != n or tuple(logits.shape[-2:]) != (height, width)
        ):
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits)
            raise HarnessError(
                f"a test-time transform inverted the logits to {got} for input of shape "
                f"{tuple(inputs.shape)}; invert must give (N, C, H, W) logits in the input's "
                "frame (`harness check-plugin` checks a test-time augmentation)"
            )
        total = logits.float() if total is None else total.add_(logits.float())
    assert total is not None
    return total if len(transforms) == 1 else total.div_(len(transforms))


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset: EvalDataset,
    protocol: Protocol,
    placement: Placement,
    *,
    should_stop: Callable[[], bool] | None = None,
    tta: TTA = "none",
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
    tta = resolve_tta(tta)
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


@torch.no_grad()
def out_of_fold(
    model: torch.nn.Module,
    dataset: EvalDataset,
    protocol: Protocol,
    placement: Placement,
    tta: Mapping[str, TTA],
) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    """Each validation image's name and, under each named test-time augmentation of
    ``tta``, the float32 probabilities ``(29, H, W)`` that ``evaluate`` thresholds: the
    logits upsampled to the scoring resolution (the original, or the protocol's
    ``eval_resolution``), then the sigmoid. One image at a time, on the CPU."""
    transforms = {name: resolve_tta(value) for name, value in tta.items()}
    training = model.training
    model.eval()
    size = None
    if protocol.eval_resolution != "original":
        size = (int(protocol.eval_resolution),) * 2
    loader = DataLoader(dataset, batch_size=protocol.batch_size, num_workers=0)
    try:
        for inputs, indices in loader:
            inputs = inputs.to(placement.device, memory_format=placement.memory_format)
            by_tta = {}
            for name, chosen in transforms.items():
                with placement.autocast():
                    by_tta[name] = tta_logits(model, inputs, chosen)
            for k, index in enumerate(indices.tolist()):
                shape = tuple(dataset.truth(index, size).shape[1:])
                yield (
                    dataset.paths[index].name,
                    {
                        name: logits_to_probabilities(logits[k], shape).cpu()
                        for name, logits in by_tta.items()
                    },
                )
    finally:
        model.train(training)
