"""What training tells whoever watches it: progress, per-epoch metrics and messages.

The engine draws no UI. ``train`` and ``harness.runs.dispatch.dispatch`` report through a
``TrainObserver``; the command line supplies one that draws a progress bar
(``harness.cli.progress``), ``harness.runs.tracking`` writes ``metrics.jsonl`` and
TensorBoard event files, ``Observers`` hands every call to several, and ``NullObserver``
hears nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the observers need no torch to be imported
    import torch


class TrainObserver(Protocol):
    """Notified as a run trains; every method returns quickly and raises nothing."""

    def run_started(self, description: str, total_steps: int, completed: int) -> None:
        """Training of ``description`` (``seed N``) starts: ``completed`` of ``total_steps``
        optimizer steps are already done (a resumed run)."""

    def step_done(self, step: int, epoch: int, epochs: int, loss: float) -> None:
        """Step ``step`` of epoch ``epoch`` (of ``epochs``) ended with loss ``loss``; sent
        when the loss is read back (every step on a CPU, every few steps on a GPU)."""

    def validating(self, epoch: int, epochs: int) -> None:
        """Validation of epoch ``epoch`` starts."""

    def validated(self, epoch: int, step: int, model: torch.nn.Module) -> None:
        """Validation of epoch ``epoch`` (after optimizer step ``step``) ended; ``model`` is
        the plain module just scored. An observer may run it on an image (``eval`` mode,
        ``no_grad``, the random state forked) and must hand it back as it found it."""

    def epoch_done(self, metrics: Mapping[str, Any]) -> None:
        """Epoch ended: ``epoch``, ``step``, ``loss`` (mean over its batches), ``lr``,
        ``images_per_s`` (this epoch's training throughput), ``wall_s`` (the run's wall time
        so far, over every session) and, when validated, ``val_mean_dice`` and
        ``val_per_class_dice`` (class -> Dice). Sent before the epoch's checkpoint is
        written: what an observer writes here is on disk before a checkpoint says the
        epoch is done."""

    def message(self, text: str) -> None:
        """A line for the user (plain text, no markup)."""

    def run_ended(self) -> None:
        """Training ended, however it ended (finished, failed or stopped)."""


class NullObserver:
    """A ``TrainObserver`` that hears everything and does nothing."""

    def run_started(self, description: str, total_steps: int, completed: int) -> None:
        pass

    def step_done(self, step: int, epoch: int, epochs: int, loss: float) -> None:
        pass

    def validating(self, epoch: int, epochs: int) -> None:
        pass

    def validated(self, epoch: int, step: int, model: torch.nn.Module) -> None:
        pass

    def epoch_done(self, metrics: Mapping[str, Any]) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def run_ended(self) -> None:
        pass


class Observers:
    """A ``TrainObserver`` that hands every call to each of ``observers``, in order."""

    def __init__(self, *observers: TrainObserver) -> None:
        self.observers = observers

    def run_started(self, description: str, total_steps: int, completed: int) -> None:
        for o in self.observers:
            o.run_started(description, total_steps, completed)

    def step_done(self, step: int, epoch: int, epochs: int, loss: float) -> None:
        for o in self.observers:
            o.step_done(step, epoch, epochs, loss)

    def validating(self, epoch: int, epochs: int) -> None:
        for o in self.observers:
            o.validating(epoch, epochs)

    def validated(self, epoch: int, step: int, model: torch.nn.Module) -> None:
        for o in self.observers:
            o.validated(epoch, step, model)

    def epoch_done(self, metrics: Mapping[str, Any]) -> None:
        for o in self.observers:
            o.epoch_done(metrics)

    def message(self, text: str) -> None:
        for o in self.observers:
            o.message(text)

    def run_ended(self) -> None:
        """Every observer hears it, even when an earlier one raises (the first error wins)."""
        error: BaseException | None = None
        for o in self.observers:
            try:
                o.run_ended()
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others
                error = error or exc
        if error is not None:
            raise error
