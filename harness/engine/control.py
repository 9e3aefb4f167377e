"""Stopping a run cleanly: Ctrl-C asks for a stop at the next safe point, and in a
data-parallel run every rank agrees to stop (or to fail) at the same step.

``Interrupted`` is what training raises once it has stopped and saved; ``StopRequested``
is how validation tells the trainer that it was abandoned on a stop request.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from harness.engine import distributed
from harness.engine.distributed import World
from harness.engine.failures import not_finite
from harness.errors import RunFailed


class Interrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C; ``checkpoint`` is the state file it saved (None: none)."""

    def __init__(self, checkpoint: Path | None, where: str) -> None:
        super().__init__(f"stopped at {where}")
        self.checkpoint = checkpoint
        self.where = where


class StopRequested(Exception):
    """Raised inside validation when a Ctrl-C asked training to stop."""


class StopOnCtrlC:
    """While active, the first Ctrl-C asks training to stop at the next safe point.

    A step is never cut in half (the optimizer could be half-way through its update), so
    the request is honoured between steps, where a checkpoint is consistent. A second
    Ctrl-C interrupts at once, keeping the last checkpoint written. The previous signal
    handlers are back in place on exit. Outside the main thread (where Python cannot set
    handlers) it does nothing.
    """

    def __init__(
        self,
        on_request: Callable[[], None] | None = None,
        signals: Sequence[signal.Signals] = (signal.SIGINT,),
    ) -> None:
        self.requested = False
        self._on_request = on_request
        self._signals = tuple(signals)
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> StopOnCtrlC:
        if threading.current_thread() is threading.main_thread():
            for sig in self._signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._on_request is not None:
            with contextlib.suppress(Exception):  # a message that fails must not stop less
                self._on_request()

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}


class StopAgreement:
    """Every rank of a data-parallel run stops, or fails, at the same step.

    On one process each question answers itself; on several, each is a collective that
    every rank must ask at the same point.
    """

    def __init__(self, world: World, device: torch.device) -> None:
        self.world = world
        self.device = device

    def agreed(self, flag: bool) -> bool:
        """``flag`` on one rank is ``flag`` on all."""
        return distributed.agree_any(flag, self.world) if self.world.active else flag

    def stop_here(self, requested: bool, bad: float | None, step: int, epoch: int) -> bool:
        """Whether every rank stops after ``step``: one was asked to, or one's loss broke.

        A loss that is not finite on any rank (``bad``: this rank's) raises ``RunFailed``
        on every rank instead (``fail_together``).
        """
        if not self.agreed(requested or bad is not None):
            return False
        if self.world.active:
            self.fail_together(bad, step, epoch)
        return True

    def fail_together(self, bad: float | None, step: int, epoch: int) -> None:
        """Raise on every rank if any rank's loss was not finite (``bad``), so that the main
        rank writes the failed record; it alone prints the error. A collective."""
        losses = distributed.gather_objects(bad, self.world)
        culprits = [(rank, value) for rank, value in enumerate(losses) if value is not None]
        if culprits:
            rank, value = culprits[0]
            message = not_finite(value, step, epoch, self.device, rank)
            raise RunFailed(message, echoed=not self.world.is_main)
