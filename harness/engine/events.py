"""What training tells whoever watches it: progress, per-epoch metrics and messages.

The engine draws no UI. ``train`` and ``harness.runs.execution.execute`` report through a
``TrainObserver``; the command line supplies one that draws a progress bar
(``harness.cli.progress``), and ``NullObserver`` hears nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


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

    def epoch_done(self, metrics: Mapping[str, Any]) -> None:
        """Epoch ended: ``epoch``, ``step``, ``loss`` (mean over its batches), ``lr`` and,
        when validated, ``val_mean_dice`` and ``val_per_class_dice`` (class -> Dice)."""

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

    def epoch_done(self, metrics: Mapping[str, Any]) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def run_ended(self) -> None:
        pass
