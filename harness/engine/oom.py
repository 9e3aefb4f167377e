"""The out-of-memory fallback: a first step that does not fit is retried in smaller pieces.

Only when no micro-batch was asked for, on one process, and on the first step this process
runs (before anything was learnt): the micro-batch is halved until the step fits (gradient
accumulation: the same protocol, recorded with the run). A rank that changed its
micro-batch alone would no longer match the others' steps, so data-parallel runs fail
instead, as does any later step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from harness.engine.step import TrainStep


class OutOfMemoryFallback:
    """Calls ``step``; on an out-of-memory error of the first call, halves its micro-batch.

    ``automatic`` says whether the fallback may act at all; ``say`` hears the line that
    tells the user what happened.
    """

    def __init__(self, step: TrainStep, *, automatic: bool, say: Callable[[str], None]) -> None:
        self.step = step
        self.automatic = automatic
        self.say = say
        self.first = True

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor, share: float) -> torch.Tensor:
        while True:
            try:
                loss = self.step(inputs, targets, share)
            except torch.OutOfMemoryError:
                size = self.step.micro_batch or inputs.shape[0]
                if not (self.automatic and self.first) or size <= 1:
                    raise
            else:
                self.first = False
                return loss
            self._shrink(inputs.shape[0], size // 2)

    def _shrink(self, batch: int, size: int) -> None:
        """Free what the failed attempt held and retry in micro-batches of ``size``."""
        self.step.optimizer.zero_grad(set_to_none=True)
        if self.step.placement.device.type == "cuda":
            torch.cuda.empty_cache()
        self.step.micro_batch = size
        self.say(
            f"out of memory on the first step with batches of {batch}: "
            f"retrying with micro-batches of {size} (gradient accumulation, same "
            "protocol; recorded with the run)"
        )
