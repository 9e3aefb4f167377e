"""Errors (``harness.errors``): what a user can fix exits 2, a run that failed (or a file it
could not write) exits 1, each said in one line and said once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.cli import root
from harness.errors import HarnessError, NotWritten, RunFailed, one_line


def test_one_line_collapses_every_kind_of_whitespace() -> None:
    assert one_line("  a\n\tb  \r\n c ") == "a b c"
    assert one_line(ValueError("bad\nvalue")) == "bad value"
    assert one_line("") == ""


def test_one_line_cuts_at_the_limit_with_an_ellipsis() -> None:
    assert one_line("abcdef", limit=6) == "abcdef"
    cut = one_line("abc\ndefgh", limit=6)
    assert cut == "abc d…" and len(cut) == 6
    assert one_line("x " * 100, limit=10).endswith("…")


def test_the_kinds_of_error() -> None:
    assert issubclass(NotWritten, RunFailed)
    assert not issubclass(HarnessError, RunFailed) and not issubclass(RunFailed, HarnessError)
    assert HarnessError("x").echoed is False
    error = RunFailed("lost", echoed=True)
    assert error.echoed is True and str(error) == "lost"


def _raising(error: BaseException) -> Callable[..., None]:
    def app(**kwargs: object) -> None:
        raise error

    return app


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (HarnessError("bad --seeds"), 2, "harness: error: bad --seeds"),
        (RunFailed("loss is nan"), 1, "harness: run failed: loss is nan"),
        (NotWritten("disk full"), 1, "harness: error: disk full"),
        (HarnessError("said by rank 0", echoed=True), 2, None),
        (RunFailed("said by rank 0", echoed=True), 1, None),
    ],
)
def test_each_error_has_its_exit_code_and_one_line_said_once(
    error: BaseException,
    code: int,
    line: str | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(root, "app", _raising(error))
    monkeypatch.setattr("sys.argv", ["harness", "run"])
    with pytest.raises(SystemExit) as exited:
        root.main()
    assert exited.value.code == code
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err.splitlines() == ([line] if line else [])


def test_any_other_exception_is_a_bug_and_keeps_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(root, "app", _raising(KeyError("bug")))
    monkeypatch.setattr("sys.argv", ["harness", "run"])
    with pytest.raises(KeyError, match="bug"):
        root.main()
