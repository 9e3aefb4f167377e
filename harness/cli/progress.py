"""The terminal's view of training: a ``TrainObserver`` that shows each seed's progress and
prints the library's messages on stderr.

On a terminal each seed has a progress bar. Where stderr is not one (``make run > log
2>&1``, nohup, CI) a bar would leave nothing readable, so the same facts go out as plain
lines instead: one when a run starts, then one at the end of an epoch when at least
``EVERY_S`` seconds have passed since the last line (an epoch or 30 s, whichever is
rarer), and one at the last epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

#: Without a terminal, at most one line per this many seconds (and per epoch).
EVERY_S = 30.0

Clock = Callable[[], float]


def clock_time(seconds: float | None) -> str:
    """``0:06:49`` (as the bar writes times); ``-:--:--`` when not known."""
    return "-:--:--" if seconds is None else str(timedelta(seconds=max(0, int(seconds))))


class TrainingProgress:
    """Per seed: description, steps done of all, epoch and loss, elapsed, time left; as a bar
    on a terminal, as plain lines elsewhere.

    Messages are printed as plain text (no markup, no highlighting), above the bar while
    it is showing. A console made quiet (a rank other than 0) draws and prints nothing.
    ``clock`` and ``every_s`` set the plain lines' timing (a test gives a fake clock).
    """

    def __init__(
        self, console: Console, *, clock: Clock = time.monotonic, every_s: float = EVERY_S
    ) -> None:
        self.console = console
        self._view: _Bar | _Lines = (
            _Bar(console) if console.is_terminal else _Lines(console, clock, every_s)
        )

    def run_started(self, description: str, total_steps: int, completed: int) -> None:
        self._view.run_started(description, total_steps, completed)

    def step_done(self, step: int, epoch: int, epochs: int, loss: float) -> None:
        self._view.step_done(step, epoch, epochs, loss)

    def validating(self, epoch: int, epochs: int) -> None:
        self._view.validating(epoch, epochs)

    def validated(self, epoch: int, step: int, model: Any) -> None:
        pass  # the bar shows "validating" until the epoch's end

    def epoch_done(self, metrics: Mapping[str, Any]) -> None:
        self._view.epoch_done(metrics)

    def message(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def run_ended(self) -> None:
        self._view.run_ended()


class _Bar:
    """The bar of one seed at a time on a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._info = ""

    def run_started(self, description: str, total_steps: int, completed: int) -> None:
        self.run_ended()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._info = ""
        self._task = self._progress.add_task(
            description, total=total_steps, completed=completed, info=""
        )

    def step_done(self, step: int, epoch: int, epochs: int, loss: float) -> None:
        self._info = f"epoch {epoch}/{epochs} loss {loss:.4f}"
        self._update(completed=step, info=self._info)

    def validating(self, epoch: int, epochs: int) -> None:
        self._update(info=f"epoch {epoch}/{epochs} validating")

    def epoch_done(self, metrics: Mapping[str, Any]) -> None:
        self._update(info=self._info)  # the last step's line again, after "validating"

    def run_ended(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress, self._task = None, None

    def _update(self, **fields: Any) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, **fields)


class _Lines:
    """The bar's facts as plain lines, for a log: at the start, then at most one per epoch
    and per ``every_s`` seconds, and at the last epoch."""

    def __init__(self, console: Console, clock: Clock, every_s: float) -> None:
        self.console = console
        self.clock = clock
        self.every_s = every_s
        self.description = ""
        self.total = self.first = self.step = 0
        self.epochs: int | None = None
        self.loss: float | None = None
        self.started = self.said = 0.0

    def run_started(self, description: str, total_steps: int, completed: int) -> None:
        self.description, self.total = description, total_steps
        self.first = self.step = completed
        self.epochs, self.loss = None, None
        self.started = self.said = self.clock()
        resumed = f", resumed at step {completed}" if completed else ""
        self._say(f"{description}: training, {total_steps} steps{resumed}")

    def step_done(self, step: int, epoch: int, epochs: int, loss: float) -> None:
        self.step, self.epochs, self.loss = step, epochs, loss

    def validating(self, epoch: int, epochs: int) -> None:
        self.epochs = epochs

    def epoch_done(self, metrics: Mapping[str, Any]) -> None:
        now = self.clock()
        epoch = int(metrics.get("epoch", 0))
        self.step = int(metrics.get("step", self.step))
        last = self.epochs is not None and epoch >= self.epochs
        if now - self.said < self.every_s and not last:
            return
        self.said = now
        self._say(self.line(metrics, now))

    def line(self, metrics: Mapping[str, Any], now: float) -> str:
        """``seed 0: epoch 3/80, step 12/320, loss 0.0560, 0:00:41 elapsed, 0:06:49 left``."""
        epochs = "?" if self.epochs is None else self.epochs
        parts = [f"epoch {metrics.get('epoch', '?')}/{epochs}", f"step {self.step}/{self.total}"]
        loss = metrics.get("loss", self.loss)
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        if metrics.get("val_mean_dice") is not None:
            parts.append(f"val Dice {metrics['val_mean_dice']:.4f}")
        elapsed = now - self.started
        done = self.step - self.first
        left = elapsed / done * (self.total - self.step) if done > 0 else None
        parts += [f"{clock_time(elapsed)} elapsed", f"{clock_time(left)} left"]
        return f"{self.description}: {', '.join(parts)}"

    def run_ended(self) -> None:
        pass

    def _say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)
