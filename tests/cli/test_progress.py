"""The command line's view of training (``harness.cli.progress``): a bar on a terminal, plain
lines elsewhere (one per epoch or 30 s, whichever is rarer), a quiet console silent."""

from __future__ import annotations

import pytest

from harness.cli.progress import EVERY_S, TrainingProgress
from tests.helpers import FakeClock, string_console


def _train(view: TrainingProgress, clock: FakeClock, epochs: int, epoch_s: float) -> None:
    """``epochs`` epochs of 4 steps, each ``epoch_s`` seconds long, as the trainer reports them."""
    view.run_started("seed 0", total_steps=4 * epochs, completed=0)
    for epoch in range(1, epochs + 1):
        for i in range(1, 5):
            clock.now += epoch_s / 4
            view.step_done(4 * (epoch - 1) + i, epoch, epochs, loss=1.0 / epoch)
        view.validating(epoch, epochs)
        view.epoch_done({"epoch": epoch, "step": 4 * epoch, "loss": 0.5 / epoch, "lr": 0.001})
    view.run_ended()


def test_messages_are_plain_text_lines() -> None:
    console, out = string_console()
    TrainingProgress(console).message("seed 0: resuming from [epoch 2] (runs/x/last.pt)")
    assert out.getvalue() == "seed 0: resuming from [epoch 2] (runs/x/last.pt)\n"


def test_on_a_terminal_the_bar_shows_the_seed_the_steps_and_the_last_loss() -> None:
    console, out = string_console(terminal=True)
    view = TrainingProgress(console)
    view.run_started("seed 3", total_steps=10, completed=2)
    view.step_done(3, epoch=1, epochs=2, loss=0.123456)
    view.validating(1, 2)
    view.epoch_done({"epoch": 1, "step": 3, "loss": 0.2, "lr": 0.001})
    view.message("a line while the bar shows")
    view.run_ended()
    text = out.getvalue()
    assert "a line while the bar shows" in text
    last = [line for line in text.splitlines() if "seed 3" in line][-1]  # the final drawing
    assert "3/10" in last and "epoch 1/2 loss 0.1235" in last and "left" in last


def test_without_a_terminal_a_line_says_the_bars_facts() -> None:
    console, out = string_console()
    clock = FakeClock()
    _train(TrainingProgress(console, clock=clock), clock, epochs=3, epoch_s=40)
    lines = out.getvalue().splitlines()
    assert lines[0] == "seed 0: training, 12 steps"
    assert lines[1] == "seed 0: epoch 1/3, step 4/12, loss 0.5000, 0:00:40 elapsed, 0:01:20 left"
    assert "\x1b" not in out.getvalue()  # no bar drawn, no colour codes


@pytest.mark.parametrize(
    ("epoch_s", "epochs", "said"),
    [
        (60.0, 4, [1, 2, 3, 4]),  # epochs longer than 30 s: a line per epoch
        (10.0, 8, [3, 6, 8]),  # 10 s epochs: a line per 30 s, and the last epoch
        (EVERY_S, 3, [1, 2, 3]),  # exactly 30 s: each epoch
    ],
)
def test_without_a_terminal_a_line_per_epoch_or_30_s_whichever_is_rarer(
    epoch_s: float, epochs: int, said: list[int]
) -> None:
    console, out = string_console()
    clock = FakeClock()
    _train(TrainingProgress(console, clock=clock), clock, epochs=epochs, epoch_s=epoch_s)
    lines = out.getvalue().splitlines()[1:]  # after "training, N steps"
    assert [int(line.split("epoch ")[1].split("/")[0]) for line in lines] == said


def test_without_a_terminal_a_resumed_run_says_where_it_resumed() -> None:
    console, out = string_console()
    clock = FakeClock()
    view = TrainingProgress(console, clock=clock)
    view.run_started("fold 2 seed 1", total_steps=8, completed=4)
    clock.now += 20
    view.step_done(8, epoch=2, epochs=2, loss=0.25)
    view.epoch_done({"epoch": 2, "step": 8, "loss": 0.3, "val_mean_dice": 0.61234})
    assert out.getvalue().splitlines() == [
        "fold 2 seed 1: training, 8 steps, resumed at step 4",
        "fold 2 seed 1: epoch 2/2, step 8/8, loss 0.3000, val Dice 0.6123, "
        "0:00:20 elapsed, 0:00:00 left",
    ]


def test_a_quiet_console_shows_nothing() -> None:
    for terminal in (True, False):
        console, out = string_console(terminal)
        console.quiet = True
        view = TrainingProgress(console)
        view.run_started("seed 0", 4, 0)
        view.step_done(1, 1, 1, 0.5)
        view.epoch_done({"epoch": 1, "step": 1, "loss": 0.5})
        view.message("nothing")
        view.run_ended()
        assert out.getvalue() == ""
