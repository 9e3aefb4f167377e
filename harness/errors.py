"""Errors a user can fix (exit 2) versus runs that failed (exit 1); and runs left with a
batch system on purpose (``--detach``: exit 0).

Anything else escaping to the command line is a bug and keeps its traceback.
"""


class _Reported(Exception):
    """An error for the person at the terminal: one line, and whether it was already said."""

    def __init__(self, *args: object, echoed: bool = False) -> None:
        super().__init__(*args)
        #: True where the line was (or will be) printed elsewhere, so the command line must
        #: not print it again: on the other ranks of a data-parallel run, the main rank says it.
        self.echoed = echoed


class HarnessError(_Reported):
    """Bad usage or bad input: one line naming the culprit and what to do. Exit code 2."""


class RunFailed(_Reported):
    """A run started but did not finish (non-finite loss, out of memory, ...). Exit code 1."""


class NotWritten(RunFailed):
    """The runs finished and kept their records, but a file made from them (a table, its
    twin, its picture) could not be written, e.g. on a full disk: one line naming the folder
    and how to write it later. Exit code 1."""


class Detached(Exception):
    """The runs were handed to a batch system and left there (``--detach``): what was sent
    and how to collect it are said already; the command stops here. Exit code 0."""


def one_line(text: object, limit: int | None = None) -> str:
    """Whitespace collapsed (and cut at ``limit`` characters), so a message fits one line."""
    flat = " ".join(str(text).split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"
