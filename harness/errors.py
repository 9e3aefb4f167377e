"""Errors a user can fix (exit 2) versus runs that failed (exit 1).

Anything else escaping to the command line is a bug and keeps its traceback.
"""


class HarnessError(Exception):
    """Bad usage or bad input: one line naming the culprit and what to do. Exit code 2."""

    exit_code = 2


class RunFailed(Exception):
    """A run started but did not finish (non-finite loss, out of memory, ...). Exit code 1."""

    exit_code = 1


def one_line(text: object, limit: int | None = None) -> str:
    """Whitespace collapsed (and cut at ``limit`` characters), so a message fits one line."""
    flat = " ".join(str(text).split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"
