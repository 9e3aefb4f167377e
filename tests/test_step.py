"""The training step (``harness.step.TrainStep``) against a bare hand-written loop.

The harness's step must do exactly what ``zero_grad / forward / loss / backward / step /
scheduler.step`` written out inline does (same weights to the bit), split batches into
micro-batches without changing a mean-over-samples gradient, and cost about the same:
the timing here is a loose guard against gross regressions on a noisy 2-core machine;
``make bench`` (``benchmarks/test_bench_step.py``) reports the real ratio.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

from harness import protocol as protocols
from harness.entry import Component, Entry
from harness.plugin_manager import Registry
from harness.protocol import Protocol
from harness.step import TrainStep
from harness.training import (
    build_components,
    make_train_step,
    seed_everything,
)

CPU = torch.device("cpu")
#: The default benchmark's model and loss; the protocol's optimizer and schedule.
ENTRY = Entry(
    Component("unetpp"),
    Component("dice"),
    Component("adamw"),
    Component("warmup-cosine"),
    Component("none"),
)
#: Smaller than the protocol's 128 px so that the file stays fast; the step does not care.
SIZE = 64
BATCH = 8
STEPS_PER_EPOCH = 4  # the synthetic protocol's 32 training images in batches of 8
#: The loose guard; the target (1.05x) is what ``make bench`` reports.
MAX_RATIO = 1.25


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


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    return protocols.load("synthetic")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load()


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


def harness_step(protocol: Protocol, registry: Registry, seed: int = 0) -> TrainStep:
    """The step as ``harness.training.train`` builds it: every component from its plugin."""
    seed_everything(seed)
    model, loss_fn, optimizer, scheduler, _ = build_components(
        protocol, ENTRY, registry, STEPS_PER_EPOCH
    )
    memory_format = torch.channels_last if protocol.channels_last else torch.contiguous_format
    model = model.to(device=CPU, memory_format=memory_format)
    return make_train_step(model, loss_fn, optimizer, scheduler, protocol, ENTRY, registry, CPU)


@dataclass
class Bare:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def bare_loop(protocol: Protocol, seed: int = 0) -> Bare:
    """The same training written by hand with the libraries, no harness code at all."""
    import segmentation_models_pytorch as smp
    from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

    seed_everything(seed)
    model = smp.UnetPlusPlus(
        encoder_name="mobilenet_v2", encoder_weights=None, in_channels=1, classes=29
    ).to(memory_format=torch.channels_last)
    loss_fn = smp.losses.DiceLoss("multilabel", from_logits=True)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=protocol.lr, weight_decay=protocol.weight_decay
    )
    total = protocol.epochs * STEPS_PER_EPOCH
    warmup = round(protocol.warmup_epochs * STEPS_PER_EPOCH)
    scheduler = SequentialLR(
        optimizer,
        [
            LinearLR(optimizer, 1 / (warmup + 1), 1.0, total_iters=warmup),
            CosineAnnealingLR(optimizer, T_max=total - warmup),
        ],
        milestones=[warmup],
    )

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        inputs = inputs.to(CPU, memory_format=torch.channels_last)
        targets = targets.to(CPU)
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs)
        loss = loss_fn(logits, targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss.detach()

    return Bare(model, optimizer, step)


def test_same_weights_as_the_bare_loop_bit_for_bit(protocol: Protocol, registry: Registry) -> None:
    assert protocol.channels_last and protocol.grad_clip == 0 and protocol.optimizer == "adamw"
    ours = harness_step(protocol, registry)
    bare = bare_loop(protocol)
    before = {k: v.clone() for k, v in ours.model.state_dict().items()}
    theirs = bare.model.state_dict()
    assert before.keys() == theirs.keys()
    assert all(torch.equal(before[k], theirs[k]) for k in before), "different initial weights"
    for inputs, targets in batches(3):
        assert torch.equal(ours(inputs, targets), bare.step(inputs, targets))
    after, theirs = ours.model.state_dict(), bare.model.state_dict()
    differ = [k for k in after if not torch.equal(after[k], theirs[k])]
    assert not differ, f"{len(differ)} tensors differ after 3 steps, e.g. {differ[:3]}"
    first = next(iter(after))
    assert not torch.equal(after[first], before[first]), "3 steps left the weights unchanged"
    assert ours.optimizer.param_groups[0]["lr"] == bare.optimizer.param_groups[0]["lr"]


class TinyNet(nn.Module):
    """Convolutions without BatchNorm: each sample's logits depend on that sample alone."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 29, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def tiny_step(**kwargs: Any) -> TrainStep:
    torch.manual_seed(0)
    model = TinyNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return TrainStep(model, nn.BCEWithLogitsLoss(), optimizer, device=CPU, **kwargs)


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


def test_costs_about_what_the_bare_loop_costs(protocol: Protocol, registry: Registry) -> None:
    """Interleaved timings after warm-up, alternating which goes first, so that drift in the
    machine's load hits both alike; CPU time of this (one-threaded) process, not wall time,
    so that time spent descheduled for other jobs counts for neither."""
    ours = harness_step(protocol, registry)
    bare = bare_loop(protocol).step
    data = batches(3)

    def timed(step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
        start = time.process_time()
        for inputs, targets in data:
            step(inputs, targets)
        return time.process_time() - start

    for step in (ours, bare):  # warm-up: the first steps set up kernels and allocations
        step(*data[0])
        step(*data[1])
    times: dict[str, list[float]] = {"harness": [], "bare": []}
    for i in range(5):
        order = [("harness", ours), ("bare", bare)]
        for name, step in order if i % 2 == 0 else order[::-1]:
            times[name].append(timed(step))
    ratio = statistics.median(times["harness"]) / statistics.median(times["bare"])
    shown = {k: [round(t, 3) for t in v] for k, v in times.items()}
    print(f"harness/bare step time: {ratio:.3f} (CPU seconds per 3 steps: {shown})")
    assert ratio <= MAX_RATIO, f"the harness step costs {ratio:.2f}x the bare loop's: {shown}"
