"""The training step (``harness.engine.step.TrainStep``): micro-batches, weights, clipping,
checks, precision.

Micro-batches must not change a mean-over-samples gradient, a rank's weight scales the
gradient and not the reported loss, and the plugin contract checks run once. Under bf16 and
fp16 (CPU autocast here) the loss is computed in fp32 outside autocast, and fp16's grad
scaler skips a step whose gradients overflowed. The step
against a bare hand-written loop (same weights to the bit, and its cost) is in
``benchmarks/test_bench_step.py``, beside the benchmark that times the two.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from harness.components.registry import Registry
from harness.engine.device import Placement, Precision
from harness.engine.step import StepSettings, TrainStep

CPU = torch.device("cpu")
#: Smaller than the protocol's 128 px so that the file stays fast; the step does not care.
SIZE = 64
BATCH = 8
HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on a small machine shared with other jobs, two threads spin-waiting
    for each other make a step take up to 10x longer, at random (measured: 1.3 s to 14 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def batches(count: int, size: int = SIZE, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Grey inputs in [0, 1] and multi-label {0, 1} targets, as the data loader gives them."""
    gen = torch.Generator().manual_seed(seed)
    return [
        (
            torch.rand(BATCH, 1, size, size, generator=gen),
            (torch.rand(BATCH, 29, size, size, generator=gen) < 0.2).float(),
        )
        for _ in range(count)
    ]


class TinyNet(nn.Module):
    """Convolutions without BatchNorm: each sample's logits depend on that sample alone."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 29, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def tiny_step(
    check_logits: Any = None,
    check_loss: Any = None,
    precision: str = "fp32",
    model: nn.Module | None = None,
    **settings: Any,
) -> TrainStep:
    torch.manual_seed(0)
    model = model or TinyNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return TrainStep(
        model,
        nn.BCEWithLogitsLoss(),
        optimizer,
        settings=StepSettings(Placement(CPU, Precision(precision)), **settings),
        check_logits=check_logits,
        check_loss=check_loss,
    )


def full_batch_gradient(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model = copy.deepcopy(model)
    loss = nn.BCEWithLogitsLoss()(model(inputs), targets)
    loss.backward()
    return loss.detach(), [p.grad for p in model.parameters()]


@pytest.mark.parametrize("micro_batch", [1, 3, 4])
def test_micro_batches_give_the_full_batch_gradient(micro_batch: int) -> None:
    step = tiny_step(micro_batch=micro_batch)
    (inputs, targets), *_ = batches(1, size=16)
    expected_loss, expected = full_batch_gradient(step.model, inputs, targets)
    loss = step(inputs, targets)
    torch.testing.assert_close(loss, expected_loss, rtol=0, atol=1e-6)
    for p, g in zip(step.model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("micro_batch", [None, 4])
def test_weight_scales_the_gradient_not_the_loss(micro_batch: int | None) -> None:
    step = tiny_step(micro_batch=micro_batch)
    (inputs, targets), *_ = batches(1, size=16)
    expected_loss, expected = full_batch_gradient(step.model, inputs, targets)
    loss = step(inputs, targets, weight=0.25)
    torch.testing.assert_close(loss, expected_loss, rtol=0, atol=1e-6)
    for p, g in zip(step.model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, 0.25 * g, rtol=1e-5, atol=1e-7)


def test_micro_batch_larger_than_the_batch_is_the_whole_batch() -> None:
    whole, larger = tiny_step(), tiny_step(micro_batch=3 * BATCH)
    for inputs, targets in batches(2, size=16):
        assert torch.equal(whole(inputs, targets), larger(inputs, targets))
    for a, b in zip(whole.model.parameters(), larger.model.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("micro_batch", [0, -2])
def test_micro_batch_must_be_positive(micro_batch: int) -> None:
    with pytest.raises(ValueError, match="micro_batch"):
        tiny_step(micro_batch=micro_batch)


@pytest.mark.parametrize("micro_batch", [None, 4])
def test_grad_clip_clips_the_whole_batch_gradient(micro_batch: int | None) -> None:
    clip = 1e-3
    step = tiny_step(grad_clip=clip, micro_batch=micro_batch)
    model = copy.deepcopy(step.model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for inputs, targets in batches(2, size=16):
        step(inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        nn.BCEWithLogitsLoss()(model(inputs), targets).backward()
        unclipped = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        assert unclipped > 10 * clip  # the clip did something
        norm = torch.linalg.vector_norm(
            torch.stack([p.grad.norm() for p in step.model.parameters()])
        )
        assert norm <= clip * (1 + 1e-5)
    for a, b in zip(step.model.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_contract_checks_run_once_on_the_first_chunk() -> None:
    seen: dict[str, list[tuple[Any, ...]]] = {"logits": [], "loss": []}
    step = tiny_step(
        micro_batch=4,
        check_logits=lambda logits, inputs: seen["logits"].append((logits.shape, inputs.shape)),
        check_loss=lambda loss: seen["loss"].append((loss.shape,)),
    )
    for inputs, targets in batches(3, size=16):
        step(inputs, targets)
    assert seen["logits"] == [((4, 29, 16, 16), (4, 1, 16, 16))]
    assert seen["loss"] == [(torch.Size([]),)]

    only_loss: list[torch.Tensor] = []
    step = tiny_step(check_loss=only_loss.append)
    for inputs, targets in batches(2, size=16):
        step(inputs, targets)
    assert len(only_loss) == 1


def test_a_failing_contract_check_stops_the_step() -> None:
    def refuse(logits: torch.Tensor, inputs: torch.Tensor) -> None:
        raise RuntimeError("bad logits")

    step = tiny_step(check_logits=refuse)
    before = [p.detach().clone() for p in step.model.parameters()]
    with pytest.raises(RuntimeError, match="bad logits"):
        step(*batches(1, size=16)[0])
    assert all(torch.equal(a, b) for a, b in zip(before, step.model.parameters(), strict=True))


# -- precision ------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_the_loss_is_given_fp32_logits_and_targets_outside_autocast(precision: str) -> None:
    seen: list[tuple[Any, ...]] = []
    step = tiny_step(
        precision=precision,
        check_logits=lambda logits, inputs: seen.append(("model", logits.dtype)),
    )

    def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        seen.append(("loss", logits.dtype, targets.dtype, torch.is_autocast_enabled("cpu")))
        return nn.functional.binary_cross_entropy_with_logits(logits, targets)

    step.loss_fn = loss_fn
    loss = step(*batches(1, size=16)[0])
    assert seen == [("model", HALF[precision]), ("loss", torch.float32, torch.float32, False)]
    assert loss.dtype == torch.float32
    assert step.scaler.is_enabled() == (precision == "fp16")


@pytest.mark.parametrize("name", ["dice", "combo"])
def test_built_in_losses_stay_finite_in_fp16_where_a_half_precision_dice_overflows(
    name: str,
) -> None:
    """One 29×512×512 batch: a soft Dice sums 262,144 pixels per class, past fp16's 65,504
    (qubvel/segmentation_models.pytorch#463); the step computes it in fp32."""
    loss_fn = Registry.load().get("losses", name).factory()
    gen = torch.Generator().manual_seed(0)
    inputs = torch.rand(1, 1, 512, 512, generator=gen)
    targets = (torch.rand(1, 29, 512, 512, generator=gen) < 0.9).float()
    torch.manual_seed(0)
    model = nn.Conv2d(1, 29, 1)
    with torch.autocast("cpu", dtype=torch.float16):
        logits = model(inputs)
    assert logits.dtype == torch.float16
    assert not torch.isfinite(loss_fn(logits, targets.half()))  # in half precision: overflow
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    placement = Placement(CPU, Precision("fp16"))
    step = TrainStep(model, loss_fn, optimizer, settings=StepSettings(placement))
    loss = step(inputs, targets)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert step.scaler.get_scale() == 2.0**16  # the step was taken, not skipped
    assert all(torch.isfinite(p).all() for p in model.parameters())


class _Overflow(torch.autograd.Function):
    """Identity forward; a backward whose gradients are infinite."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad * float("inf")


class OverflowsOnce(TinyNet):
    """TinyNet whose first training step's gradients overflow."""

    calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = super().forward(x)
        return _Overflow.apply(out) if self.calls == 1 else out


def test_fp16_skips_a_step_whose_gradients_overflow_and_lowers_its_scale() -> None:
    step = tiny_step(precision="fp16", model=OverflowsOnce())
    first, second = batches(2, size=16)
    before = [p.detach().clone() for p in step.model.parameters()]
    loss = step(*first)
    assert torch.isfinite(loss)  # the loss was fine; its gradients were not
    assert all(torch.equal(a, b) for a, b in zip(before, step.model.parameters(), strict=True))
    assert step.scaler.get_scale() == 2.0**15
    step(*second)
    assert not any(torch.equal(a, b) for a, b in zip(before, step.model.parameters(), strict=True))
    assert step.scaler.get_scale() == 2.0**15
