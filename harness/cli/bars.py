"""Progress bars on stderr for the library's ``progress(done, total)`` callbacks.

The library draws nothing: a function that takes a long time accepts a callback and
calls it as work completes; the command line passes one of these bars' ``update``.
Where stderr is not a terminal (a log file, CI) a bar says the same in plain lines: when
work starts, at most every 30 s while it goes on, and when it is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.errors import LiveError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from harness.cli.progress import EVERY_S, Clock, clock_time

#: What the library calls as work completes: ``progress(done, total)``.
Update = Callable[[int, int], None]


@contextmanager
def bar(
    description: str, console: Console, *, remaining: bool = False, clock: Clock = time.monotonic
) -> Iterator[Update]:
    """A transient bar (text, bar, N/M, elapsed[, remaining]) while the block runs.

    Yields the ``progress(done, total)`` callback to hand to the library. Where another
    live display is already showing (a bar inside a bar), the callback draws nothing.
    Without a terminal, ``Lines`` say it instead (their timing by ``clock``).
    """
    if not console.is_terminal:
        lines = Lines(description, console, clock)
        yield lines.update
        lines.done()  # not reached when the block raised: its error says what happened
        return
    columns: list[ProgressColumn] = [
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    if remaining:
        columns.append(TimeRemainingColumn())
    progress = Progress(*columns, console=console, transient=True)
    try:
        progress.start()
    except LiveError:
        yield _silent
        return
    task = progress.add_task(description, total=None)
    try:
        yield lambda done, total: progress.update(task, completed=done, total=total)
    finally:
        progress.stop()


def _silent(done: int, total: int) -> None:
    del done, total


class Lines:
    """A bar's facts as plain lines: ``Preparing the dataset: started`` when there is work to
    do (not when everything was ready: a cached dataset says nothing), ``...: 12/40, 0:00:30
    elapsed`` at most every ``EVERY_S`` seconds, and ``...: done in 0:00:41``."""

    def __init__(self, description: str, console: Console, clock: Clock) -> None:
        self.description, self.console, self.clock = description, console, clock
        self.started: float | None = None
        self.said = 0.0

    def update(self, done: int, total: int) -> None:
        """The library's ``progress(done, total)``."""
        now = self.clock()
        if self.started is None:
            if done < total:
                self.started = self.said = now
                self._say("started")
        elif now - self.said >= EVERY_S:
            self.said = now
            self._say(f"{done}/{total}, {clock_time(now - self.started)} elapsed")

    def done(self) -> None:
        """The block ended without an error: say so, if it was said to start."""
        if self.started is not None:
            self._say(f"done in {clock_time(self.clock() - self.started)}")

    def _say(self, text: str) -> None:
        self.console.print(f"{self.description}: {text}", markup=False, highlight=False)
