"""The device a run trains on: choosing it, naming it, seeding, precision and peak memory."""

from __future__ import annotations

import contextlib
import random
import resource
import sys
from dataclasses import dataclass

import numpy as np
import torch

from harness.errors import HarnessError
from harness.protocol import Protocol


def resolve_device(choice: str) -> torch.device:
    """``auto`` (CUDA when there is one), ``cpu`` or ``cuda``; anything else is a one-line error."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise HarnessError("--device cuda: no CUDA device is available here; use --device cpu")
    if choice not in ("cpu", "cuda"):
        raise HarnessError(f"--device {choice!r}: choose auto, cpu or cuda")
    return torch.device(choice)


def device_name(device: torch.device) -> str:
    """The GPU's model name, or the CPU with its thread count (as records show it)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


#: What ``--precision`` takes: ``auto`` (the protocol's policy on this device) or a precision.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def amp_dtype(
    protocol: Protocol, device: torch.device, precision: str = "auto"
) -> torch.dtype | None:
    """The autocast dtype of a run (None: fp32), or a one-line ``HarnessError``.

    ``auto``: bf16 where the GPU supports it, else fp16; fp32 on a CPU or when the protocol
    says ``amp = false``. ``fp32``, ``bf16`` or ``fp16``: that precision, on any device (on a
    CPU under CPU autocast), except that a protocol with ``amp = false`` trains in fp32 only
    (its benchmark fixes it) and a GPU without bf16 cannot do bf16.
    """
    if precision not in PRECISIONS:
        raise HarnessError(f"--precision {precision!r}: choose auto, fp32, bf16 or fp16")
    if precision == "auto":
        if not protocol.amp or device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    dtype = _DTYPES[precision]
    if dtype is not None and not protocol.amp:
        raise HarnessError(
            f"--precision {precision}: protocol {protocol.label!r} sets amp = false (its "
            "benchmark trains in fp32); use --precision fp32 or auto, or --set amp=true "
            "(a benchmark of its own)"
        )
    if dtype is torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise HarnessError(
            f"--precision bf16: this GPU ({torch.cuda.get_device_name(device)}) does not "
            "support bf16; use --precision fp16 or auto"
        )
    return dtype


def memory_format(protocol: Protocol) -> torch.memory_format:
    """channels_last when the protocol asks for it, else the default layout."""
    return torch.channels_last if protocol.channels_last else torch.contiguous_format


@dataclass(frozen=True)
class Placement:
    """Where a model runs and in what form: the device, the autocast dtype (None: fp32) and
    the memory format its inputs are given in. Training and validation place a run's model
    alike (``of``)."""

    device: torch.device
    dtype: torch.dtype | None = None
    memory_format: torch.memory_format = torch.contiguous_format

    @classmethod
    def of(cls, protocol: Protocol, device: torch.device, precision: str = "auto") -> Placement:
        """The protocol's placement on ``device``: the precision asked for (``auto``: the
        protocol's there; ``amp_dtype``), its memory format."""
        dtype = amp_dtype(protocol, device, precision)
        return cls(device, dtype, memory_format(protocol))

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to ``dtype`` on the device; nothing (fp32) when ``dtype`` is None."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32``, ``bf16`` or ``fp16``: the precision as records name it."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def reset_peak_memory(device: torch.device) -> None:
    """Start measuring the peak GPU memory from now (nothing to do on a CPU)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated, or on a CPU the process's peak resident size, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10
