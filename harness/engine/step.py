"""One optimizer step of the standard protocol, and nothing else.

``TrainStep`` is what every run's inner loop calls once per batch: copy the batch to the
device, forward under autocast, loss in float32 outside autocast (the loss contract: a
plugin's loss is given fp32 logits and targets, whatever the precision), backward (in fp16
through a grad scaler, which skips a step whose gradients overflowed and lowers its scale),
optional gradient clipping, optimizer and scheduler step. It is kept apart from the loop
(``harness.engine.trainer``: epochs, checkpoints, validation) so that its cost can be set
side by side with a bare hand-written loop (``benchmarks/test_bench_step.py``,
``scripts/gpu_bench.py``).

The protocol fixes the effective batch. ``micro_batch`` splits each batch into chunks
that are forwarded and backpropagated one after another, their gradients summed with
weights ``len(chunk) / len(batch)``, and one optimizer step taken: for a loss that is a
mean over samples the update is the full batch's. BatchNorm statistics and losses that
pool over the batch (Dice over ``N·H·W``) see the chunk, not the batch, which is why the
micro-batch size is recorded with every run. Under DistributedDataParallel the gradient
all-reduce happens once per step, on the last chunk.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from harness.engine.device import Placement


@dataclass(frozen=True)
class StepSettings:
    """How a step trains, beside what it trains: where and in what precision
    (``placement``; fp16 brings a grad scaler, bf16 and fp32 need none), the gradient norm
    clipped to (0: no clipping) and the micro-batch (None: whole batches)."""

    placement: Placement
    grad_clip: float = 0.0
    micro_batch: int | None = None

    def __post_init__(self) -> None:
        if self.micro_batch is not None and self.micro_batch < 1:
            raise ValueError(f"micro_batch must be at least 1, got {self.micro_batch}")


class TrainStep:
    """Forward, backward (in micro-batches if asked) and one optimizer step.

    ``model`` may be the plain module, its DistributedDataParallel wrapper or a compiled
    version of either; ``check_logits(logits, inputs)`` and ``check_loss(loss)`` are
    called on the first chunk of the first step (the plugin contracts), then never again.
    Returns the batch's loss, detached, on the device: reading it (``.item()``) is left to
    the caller, so a GPU is not made to wait every step.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        *,
        settings: StepSettings,
        check_logits: Callable[[Any, torch.Tensor], None] | None = None,
        check_loss: Callable[[Any], None] | None = None,
    ) -> None:
        placement = settings.placement
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.placement = placement
        scaler = placement.precision.scaler
        self.scaler = torch.amp.GradScaler(placement.device.type, enabled=scaler)
        self.grad_clip = settings.grad_clip
        #: Changed by the out-of-memory fallback and by a resume (``harness.engine.oom``).
        self.micro_batch = settings.micro_batch
        self._check_logits = check_logits
        self._check_loss = check_loss
        self._checked = check_logits is None and check_loss is None

    def to_device(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The batch on the device: non-blocking copies, inputs in ``memory_format``."""
        device, memory_format = self.placement.device, self.placement.memory_format
        inputs = inputs.to(device, non_blocking=True, memory_format=memory_format)
        return inputs, targets.to(device, non_blocking=True)

    def __call__(
        self, inputs: torch.Tensor, targets: torch.Tensor, weight: float = 1.0
    ) -> torch.Tensor:
        """One step on a batch; ``weight`` scales this batch's gradient (a rank's share)."""
        inputs, targets = self.to_device(inputs, targets)
        n = inputs.shape[0]
        size = min(self.micro_batch or n, n)
        starts = range(0, n, size)
        self.optimizer.zero_grad(set_to_none=True)
        total: torch.Tensor | None = None
        for i, start in enumerate(starts):
            x, y = inputs[start : start + size], targets[start : start + size]
            last = i == len(starts) - 1
            sync = contextlib.nullcontext()
            if not last and hasattr(self.model, "no_sync"):
                sync = self.model.no_sync()  # DDP: all-reduce the gradients once, at the end
            with sync:
                with self.placement.autocast():
                    logits = self.model(x)
                    if not self._checked and self._check_logits is not None:
                        self._check_logits(logits, x)
                # The loss in fp32 outside autocast, whatever the model's precision: a soft
                # Dice's sums over N·H·W pixels overflow half precision (65504).
                loss = self.loss_fn(logits.float(), y.float())
                if not self._checked:
                    if self._check_loss is not None:
                        self._check_loss(loss)
                    self._checked = True
                if size < n:
                    loss = loss * (x.shape[0] / n)
                part = loss.detach()
                if weight != 1.0:
                    loss = loss * weight
                self.scaler.scale(loss).backward()
            total = part if total is None else total + part
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        assert total is not None
        return total
