"""``harness power``: how many seeds would let a table resolve a difference, at its noise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.root import line


def power(
    table: Annotated[
        Path, typer.Argument(help="A table (its .md, or its .json twin): leaderboard or ablation")
    ],
    detect: Annotated[
        float,
        typer.Option(help="The difference in mean Dice to resolve (e.g. 0.005)"),
    ],
) -> None:
    """Seeds a row (or folds × seeds) that would resolve --detect at the table's own noise.

    Read from the table's JSON twin alone (its fitted noise model): nothing is trained. The
    answer is for 80 % power at α = 0.05 after the table's correction.
    """
    from harness.results.power import power as plan

    line(plan(table, detect).line())
