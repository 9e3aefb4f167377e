"""What a trained model costs at inference, measured at the end of every run: images per
second and GFLOPs per image, at the protocol's resolution, on the run's device.

Images/s: the model alone (no data loading, no resizing, no thresholding), in eval mode
under the run's precision, on one ``1 × C × R × R`` input (batch 1, R the protocol's
resolution) already on the device; ``WARMUP`` passes first, then the median of ``TIMED``
passes, each synchronised on CUDA. GFLOPs: ``torch.utils.flop_counter`` over one such
forward pass (it counts convolutions and matrix products, each multiply-add as 2 FLOPs).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from harness.engine.device import Placement

WARMUP = 3
TIMED = 10


def measure(
    model: torch.nn.Module,
    in_channels: int,
    resolution: int,
    placement: Placement,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """``inference_images_per_s`` and ``gflops`` of ``model`` (left in the mode it was), and
    how they were measured (``inference_warmup``, ``inference_timed``: the passes); ``clock``
    times each pass (wall time; ``harness cost --clock cpu`` gives the process's CPU time)."""
    was_training = model.training
    model.eval()
    x = torch.randn(1, in_channels, resolution, resolution, device=placement.device)
    x = x.contiguous(memory_format=placement.memory_format)
    try:
        with torch.inference_mode(), placement.autocast():
            with FlopCounterMode(display=False) as counter:
                model(x)
            flops = counter.get_total_flops()
            times = [_timed(model, x, placement.device, clock) for _ in range(WARMUP + TIMED)]
    finally:
        model.train(was_training)
    seconds = statistics.median(times[WARMUP:])
    return {
        "inference_images_per_s": 1.0 / seconds if seconds > 0 else None,
        "gflops": flops / 1e9,
        "inference_warmup": WARMUP,
        "inference_timed": TIMED,
    }


def _timed(
    model: torch.nn.Module, x: torch.Tensor, device: torch.device, clock: Callable[[], float]
) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = clock()
    model(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return clock() - t0
