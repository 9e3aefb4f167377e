"""What a run that goes wrong says: where it was (a step, a validation, a checkpoint) and
what to try. Errors users can act on are ``RunFailed`` lines; ``HarnessError``s (a plugin
that broke its contract), ``RunFailed`` and Ctrl-C pass through as they are."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from harness.engine.device import device_name
from harness.errors import HarnessError, RunFailed, one_line


class Where:
    """Where training is, for the message of a failure there ("step 3 (epoch 1)", ...).

    Steps are noted as numbers and formatted only when a message needs them.
    """

    def __init__(self, epoch: int = 1) -> None:
        self._kind = "start"
        self._epoch = epoch
        self._step = 0

    def start_of_epoch(self, epoch: int) -> None:
        self._kind, self._epoch = "start", epoch

    def step(self, step: int, epoch: int) -> None:
        self._kind, self._step, self._epoch = "step", step, epoch

    def validation(self, epoch: int) -> None:
        self._kind, self._epoch = "validation", epoch

    def final_validation(self) -> None:
        self._kind = "final validation"

    def checkpoint(self, epoch: int) -> None:
        self._kind, self._epoch = "checkpoint", epoch

    @property
    def validating(self) -> bool:
        return self._kind in ("validation", "final validation")

    def __str__(self) -> str:
        if self._kind == "step":
            return f"step {self._step} (epoch {self._epoch})"
        if self._kind == "validation":
            return f"the validation of epoch {self._epoch}"
        if self._kind == "final validation":
            return "the final validation"
        if self._kind == "checkpoint":
            return f"the checkpoint of epoch {self._epoch}"
        return f"the start of epoch {self._epoch}"


def out_of_memory(where: Where, device: torch.device, exc: BaseException) -> str:
    """The message of an out-of-memory error at ``where``, with what to try there."""
    advice = (
        "validation scores one batch of full-resolution images at a time; "
        "try a device with more memory"
        if where.validating
        else "try --micro-batch N (same protocol, smaller pieces of each batch) or another device"
    )
    return f"out of memory on {device_name(device)} at {where}: {one_line(exc, 160)}; {advice}"


@contextlib.contextmanager
def explained(where: Where, device: torch.device) -> Iterator[None]:
    """Turn any other exception inside into a ``RunFailed`` saying where it happened."""
    try:
        yield
    except (HarnessError, RunFailed, KeyboardInterrupt):
        raise
    except torch.OutOfMemoryError as exc:
        raise RunFailed(out_of_memory(where, device, exc)) from exc
    except Exception as exc:
        raise RunFailed(
            f"{type(exc).__name__} at {where}: "
            f"{one_line(exc, 240)}; rerun with --debug for the traceback"
        ) from exc


def not_finite(
    value: float, step: int, epoch: int, device: torch.device, rank: int | None = None
) -> str:
    """The message of a run whose loss stopped being a number (on ``rank`` of several)."""
    on = f" on rank {rank}" if rank is not None else ""
    return (
        f"loss became {value} {'by' if device.type == 'cuda' else 'at'} step {step}{on} "
        f"(epoch {epoch}); try a lower lr (--set lr=...) or --set grad_clip=1.0"
    )
