"""The device a run trains on: choosing it, naming it, seeding, precision and peak memory."""

from __future__ import annotations

import contextlib
import random
import resource
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness.errors import HarnessError
from harness.protocol import Protocol


class Unavailable(HarnessError):
    """A device or precision that is no such thing or cannot be had here, in the engine's
    words: the setting (``device``, ``precision``), the value as asked, what is wrong, the
    values that would do instead, and a protocol change that would (``amp=true``).

    Its message names no command-line option; ``said`` words the same line for a caller
    that knows the setting by another name (the command line: ``--precision``).
    """

    def __init__(
        self,
        setting: str,
        value: str,
        reason: str,
        instead: Sequence[str] = (),
        protocol_change: str | None = None,
    ) -> None:
        self.setting, self.value, self.reason = setting, value, reason
        self.instead, self.protocol_change = tuple(instead), protocol_change
        super().__init__(self.said())

    def said(self, name: str | None = None, derive: str = "a protocol with ") -> str:
        """The one line, with the setting called ``name`` (default: its own name, and the
        values instead named bare) and a protocol change written after ``derive``."""
        line = f"{name or self.setting} {self.value}: {self.reason}"
        if self.instead:
            line += f"; use {name + ' ' if name else ''}{' or '.join(self.instead)}"
        if self.protocol_change:
            line += f", or {derive}{self.protocol_change} (a benchmark of its own)"
        return line

    def __reduce__(self) -> tuple[Any, ...]:  # picklable, as exceptions crossing processes are
        args = (self.setting, self.value, self.reason, self.instead, self.protocol_change)
        return (type(self), args)


def resolve_device(choice: str) -> torch.device:
    """``auto`` (CUDA when there is one), ``cpu`` or ``cuda``; anything else is
    ``Unavailable`` (one line)."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise Unavailable("device", "cuda", "no CUDA device is available here", ["cpu"])
    if choice not in ("cpu", "cuda"):
        raise Unavailable("device", repr(choice), "choose auto, cpu or cuda")
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


#: The precisions a run may ask for: ``auto`` (the protocol's policy on the device) or one.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


@dataclass(frozen=True)
class Precision:
    """The precision a run trains (and validates) in, resolved: its name as records say it
    (``fp32``, ``bf16``, ``fp16``), its autocast dtype (None: fp32), and whether its steps
    go through a grad scaler (fp16 only: bf16 and fp32 need none)."""

    name: str = "fp32"

    def __post_init__(self) -> None:
        if self.name not in _DTYPES:
            raise ValueError(f"no precision {self.name!r}; one of {', '.join(_DTYPES)}")

    @property
    def dtype(self) -> torch.dtype | None:
        return _DTYPES[self.name]

    @property
    def scaler(self) -> bool:
        return self.name == "fp16"

    @classmethod
    def resolve(cls, protocol: Protocol, device: torch.device, asked: str = "auto") -> Precision:
        """The precision a run asking for ``asked`` trains in on ``device``, or ``Unavailable``.

        ``auto``: bf16 where the GPU supports it, else fp16; fp32 on a CPU or when the
        protocol says ``amp = false``. ``fp32``, ``bf16`` or ``fp16``: that precision, on any
        device (on a CPU under CPU autocast), except that a protocol with ``amp = false``
        trains in fp32 only (its benchmark fixes it) and a GPU without bf16 cannot do bf16.
        """
        if asked not in PRECISIONS:
            raise Unavailable("precision", repr(asked), "choose auto, fp32, bf16 or fp16")
        if asked == "auto":
            if not protocol.amp or device.type != "cuda":
                return cls("fp32")
            return cls("bf16" if torch.cuda.is_bf16_supported() else "fp16")
        if asked != "fp32" and not protocol.amp:
            reason = f"protocol {protocol.label!r} sets amp = false (its benchmark trains in fp32)"
            raise Unavailable("precision", asked, reason, ["fp32", "auto"], "amp=true")
        if asked == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            gpu = torch.cuda.get_device_name(device)
            reason = f"this GPU ({gpu}) does not support bf16"
            raise Unavailable("precision", asked, reason, ["fp16", "auto"])
        return cls(asked)


def memory_format(protocol: Protocol) -> torch.memory_format:
    """channels_last when the protocol asks for it, else the default layout."""
    return torch.channels_last if protocol.channels_last else torch.contiguous_format


@dataclass(frozen=True)
class Placement:
    """Where a model runs and in what form: the device, the precision (its autocast dtype)
    and the memory format its inputs are given in. Training and validation place a run's
    model alike (``of``)."""

    device: torch.device
    precision: Precision = Precision()
    memory_format: torch.memory_format = torch.contiguous_format

    def __post_init__(self) -> None:
        if not isinstance(self.precision, Precision):
            raise TypeError(f"a placement's precision is a Precision, got {self.precision!r}")

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype (None: fp32)."""
        return self.precision.dtype

    @classmethod
    def of(
        cls, protocol: Protocol, device: torch.device, precision: Precision | None = None
    ) -> Placement:
        """The protocol's placement on ``device``: in ``precision`` (None: the protocol's own
        there, ``Precision.resolve``), in its memory format."""
        if precision is None:
            precision = Precision.resolve(protocol, device)
        return cls(device, precision, memory_format(protocol))

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to ``dtype`` on the device; nothing (fp32) when ``dtype`` is None."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


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
