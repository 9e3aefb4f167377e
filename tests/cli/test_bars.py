"""Progress bars for long work (``harness.cli.bars``): on a terminal a transient bar (where
rich refuses another live display, nothing drawn); elsewhere plain lines: when work starts, at most
every 30 s while it goes on, and when it is done (nothing for work already done, no "done"
for work that failed)."""

from __future__ import annotations

import pytest
from rich.errors import LiveError

from harness.cli import bars
from tests.helpers import FakeClock, string_console


def test_without_a_terminal_a_bar_says_its_start_progress_and_end() -> None:
    console, out = string_console()
    clock = FakeClock()
    with bars.bar("Preparing the dataset", console, clock=clock) as progress:
        progress(0, 40)
        for done in range(1, 41):
            clock.now += 1.0
            progress(done, 40)
    assert out.getvalue().splitlines() == [
        "Preparing the dataset: started",
        "Preparing the dataset: 30/40, 0:00:30 elapsed",
        "Preparing the dataset: done in 0:00:40",
    ]


def test_without_a_terminal_work_already_done_says_nothing() -> None:
    console, out = string_console()
    with bars.bar("Preparing the dataset", console) as progress:
        progress(14, 14)  # a cached dataset: every check remembered
    assert out.getvalue() == ""


def test_without_a_terminal_a_bar_that_fails_does_not_say_done() -> None:
    console, out = string_console()
    with pytest.raises(ValueError), bars.bar("Preparing the dataset", console) as progress:
        progress(1, 10)
        raise ValueError("a bad label file")
    assert out.getvalue().splitlines() == ["Preparing the dataset: started"]


def test_on_a_terminal_a_bar_shows_its_count() -> None:
    console, out = string_console(terminal=True)
    with bars.bar("Measuring", console, remaining=True) as progress:
        progress(3, 8)
        console.print("a line while the bar shows")
    text = out.getvalue()
    assert "Measuring" in text and "3/8" in text and "a line while the bar shows" in text


def test_where_no_bar_can_show_the_callback_draws_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich refuses a second live display (older releases did; rich 15 nests them)."""

    def refuse(self: object) -> None:
        raise LiveError("Only one live display may be active at once")

    monkeypatch.setattr(bars.Progress, "start", refuse)
    console, out = string_console(terminal=True)
    with bars.bar("Inner", console) as progress:
        assert progress is bars._silent
        progress(1, 2)
    assert out.getvalue() == ""
