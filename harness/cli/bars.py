"""Progress bars on stderr for the library's ``progress(done, total)`` callbacks.

The library draws nothing: a function that takes a long time accepts a callback and
calls it as work completes; the command line passes one of these bars' ``update``.
"""

from __future__ import annotations

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

#: What the library calls as work completes: ``progress(done, total)``.
Update = Callable[[int, int], None]


@contextmanager
def bar(description: str, console: Console, *, remaining: bool = False) -> Iterator[Update]:
    """A transient bar (text, bar, N/M, elapsed[, remaining]) while the block runs.

    Yields the ``progress(done, total)`` callback to hand to the library. Where another
    live display is already showing (a bar inside a bar), the callback draws nothing.
    """
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
