"""Errors a user can fix (exit 2) versus runs that failed (exit 1); runs left with a batch
system on purpose (``--detach``: exit 0); and how text from outside is shown in their one
line (``visible``).

Anything else escaping to the command line is a bug and keeps its traceback.
"""

import unicodedata


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


#: Unicode categories a terminal, a markdown viewer or a page does not show as themselves:
#: control characters (line breaks, escape sequences), line and paragraph separators, and
#: lone surrogates (which cannot even be written as UTF-8).
_HIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})
#: Formatting characters that reorder what follows them (bidirectional overrides).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def hidden(char: str) -> bool:
    """Whether ``char`` is one that text from outside (a record, a file name) may not show as
    itself: a line break or other control character, a separator, a lone surrogate, or a
    bidirectional override."""
    return unicodedata.category(char) in _HIDDEN_CATEGORIES or char in _BIDI


def visible(text: object, limit: int | None = None) -> str:
    """``text`` with every hidden character written as its escape (``\\n``, ``\\x1b``,
    ``\\u202e``): one line that shows what it holds, safe to print and to write as UTF-8
    (cut at ``limit`` characters, when given)."""
    shown = "".join(
        c.encode("unicode_escape").decode("ascii") if hidden(c) else c for c in str(text)
    )
    return shown if limit is None or len(shown) <= limit else shown[: limit - 1] + "…"
