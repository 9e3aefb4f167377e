"""The command line's view of training (``harness.cli.progress``)."""

from __future__ import annotations

import io

from rich.console import Console

from harness.cli.progress import TrainingProgress


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, force_terminal=False), out


def test_messages_are_plain_text_lines() -> None:
    console, out = _console()
    TrainingProgress(console).message("seed 0: resuming from [epoch 2] (runs/x/last.pt)")
    assert out.getvalue() == "seed 0: resuming from [epoch 2] (runs/x/last.pt)\n"


def test_the_bar_shows_the_seed_the_steps_and_the_last_loss() -> None:
    console, out = _console()
    view = TrainingProgress(console)
    view.run_started("seed 3", total_steps=10, completed=2)
    view.step_done(3, epoch=1, epochs=2, loss=0.123456)
    view.validating(1, 2)
    view.epoch_done({"epoch": 1, "step": 3, "loss": 0.2, "lr": 0.001})
    view.message("a line while the bar shows")
    view.run_ended()
    text = out.getvalue()
    assert "a line while the bar shows" in text
    last = text.strip().splitlines()[-1]
    assert last.startswith("seed 3") and "3/10" in last and "epoch 1/2 loss 0.1235" in last
    assert "left" in last


def test_a_quiet_console_shows_nothing() -> None:
    console, out = _console()
    console.quiet = True
    view = TrainingProgress(console)
    view.run_started("seed 0", 4, 0)
    view.step_done(1, 1, 1, 0.5)
    view.message("nothing")
    view.run_ended()
    assert out.getvalue() == ""
