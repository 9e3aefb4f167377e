"""Errors a user can fix (exit 2) versus runs that failed (exit 1).

Anything else escaping to the command line is a bug and keeps its traceback.
"""


class HarnessError(Exception):
    """Bad usage or bad input: one line naming the culprit and what to do. Exit code 2."""

    exit_code = 2


class RunFailed(Exception):
    """A run started but did not finish (non-finite loss, out of memory, ...). Exit code 1."""

    exit_code = 1
