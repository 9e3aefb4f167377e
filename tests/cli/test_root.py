"""The root of the command line (``harness.cli.root``): ``main`` maps what ends a command to
its exit code and one line (a bad option or command with its near matches, hidden spellings
left out; a full disk; Ctrl-C; runs left with a batch system), ``--debug`` keeps the
traceback, and text from outside prints as it is. (Each error kind's code and line:
tests/test_errors.py.)"""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest

from harness.cli import root
from harness.errors import Detached, HarnessError


def _raising(error: BaseException) -> Callable[..., None]:
    def app(**kwargs: object) -> None:
        raise error

    return app


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr("sys.argv", ["harness", *args])
    with pytest.raises(SystemExit) as exited:
        root.main()
    return exited.value.code


@pytest.mark.parametrize(
    "args, said",
    [
        (("run", "--modle", "unetpp"), "No such option: --modle; did you mean "),
        # Its one near match is the hidden --aug: no "did you mean".
        (("run", "--augg", "x"), "No such option: --augg (see `harness run --help`)"),
        (("lst",), "No such command 'lst'. Did you mean 'list'? (see `harness --help`)"),
        (("data", "synt"), "(see `harness data --help`)"),
    ],
)  # fmt: skip
def test_a_bad_option_or_command_is_one_line_with_near_matches(
    cli, args: tuple[str, ...], said: str
) -> None:
    result = cli(*args)
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert line.startswith("harness: error: ") and said in line, line
    if args[1:2] == ("--modle",):
        assert "--model" in line


@pytest.mark.parametrize(
    "error, code, said",
    [
        (Detached(), 0, ""),  # what was sent, and how to collect it, is said already
        (KeyboardInterrupt(), 130, "harness: interrupted"),
        (OSError(errno.ENOSPC, "No space left on device", "/full/x"), 1,
         "harness: error: /full: the disk is full (No space left on device)"),
    ],
)  # fmt: skip
def test_what_ends_a_command_is_its_exit_code_and_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: BaseException,
    code: int,
    said: str,
) -> None:
    monkeypatch.setattr(root, "app", _raising(error))
    assert _main(monkeypatch, "run") == code
    err = capsys.readouterr().err.strip()
    assert err.startswith(said) and len(err.splitlines()) <= 1, err


def test_another_os_error_is_a_bug_and_debug_keeps_every_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(root, "app", _raising(OSError(errno.EACCES, "Permission denied")))
    monkeypatch.setattr("sys.argv", ["harness", "run"])
    with pytest.raises(PermissionError):
        root.main()
    monkeypatch.setattr(root, "app", _raising(HarnessError("bad --seeds")))
    monkeypatch.setattr("sys.argv", ["harness", "--debug", "run"])
    with pytest.raises(HarnessError, match="bad --seeds"):
        root.main()


def test_an_error_from_another_rank_says_which(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RANK", "3")
    root.say("harness: error: bad [bold]input[/bold]")
    assert capsys.readouterr().err == "[rank 3] harness: error: bad [bold]input[/bold]\n"


def test_text_from_outside_prints_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    root.line("dice:smooth=[/x] :smile: [red]x")
    assert capsys.readouterr().out == "dice:smooth=[/x] :smile: [red]x\n"
    assert root.text("[/x]", "bold").plain == "[/x]"
