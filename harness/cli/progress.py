"""The terminal's view of training: a ``TrainObserver`` that draws the progress bar of each
seed and prints the library's messages on stderr."""

from __future__ import annotations

from collections.abc import Mapping
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


class TrainingProgress:
    """Per seed: description, bar, steps done of all, epoch and loss, elapsed, time left.

    Messages are printed as plain text (no markup, no highlighting), above the bar while
    it is showing. A console made quiet (a rank other than 0) draws and prints nothing.
    """

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

    def validated(self, epoch: int, step: int, model: Any) -> None:
        pass  # the bar shows "validating" until the epoch's end

    def epoch_done(self, metrics: Mapping[str, Any]) -> None:
        self._update(info=self._info)  # the last step's line again, after "validating"

    def message(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def run_ended(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress, self._task = None, None

    def _update(self, **fields: Any) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, **fields)
