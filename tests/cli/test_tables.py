"""The tables the command line prints (``harness.cli.tables``): per-class Dice in three
column pairs in ``CLASSES`` order, down each pair; every tuning trial with its values, Dice
and cost, the chosen one marked. (``data stats``'s table: tests/cli/test_data.py.)"""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console
from rich.table import Table

from harness.classes import CLASSES
from harness.cli.tables import per_class_table, trials_table


def _cells(table: Table) -> list[list[str]]:
    """The table as printed, row by row, cell by cell."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(table)
    lines = console.export_text().splitlines()
    return [[c.strip() for c in line.split("│")[1:-1]] for line in lines if "│" in line]


def test_per_class_dice_runs_down_three_column_pairs_in_class_order() -> None:
    per_class = {name: i / 100 for i, name in enumerate(CLASSES)}
    table = per_class_table(per_class, "Seed 0: per-class Dice")
    assert [c.header for c in table.columns] == ["Class", "Dice"] * 3
    rows = _cells(table)
    assert len(rows) == 10  # 29 classes, ten to a pair of columns
    down = [(row[2 * pair], row[2 * pair + 1]) for pair in range(3) for row in rows]
    assert down[: len(CLASSES)] == [(name, f"{per_class[name]:.4f}") for name in CLASSES]
    assert down[len(CLASSES) :] == [("", "")]  # the last pair's last row is empty


def test_every_trial_in_a_row_the_chosen_one_marked() -> None:
    trials = [
        SimpleNamespace(number=0, values={"lr": 0.00123456, "weight_decay": 1e-4}, dice=0.71,
                        device_hours=0.0125),
        SimpleNamespace(number=1, values={"lr": 0.03, "weight_decay": 0.0}, dice=None,
                        device_hours=0.002),
        SimpleNamespace(number=2, values={"lr": 0.01, "weight_decay": 5e-5}, dice=0.74,
                        device_hours=0.0131),
    ]  # fmt: skip
    outcome = SimpleNamespace(
        tuning=SimpleNamespace(space=[("lr", None), ("weight_decay", None)], fold=4),
        trials=trials,
        chosen=trials[2],
        folder=Path("runs/studies/s"),
        rungs=(),  # a full schedule: no Epochs column
    )
    table = trials_table(outcome)
    assert str(table.title) == "Tuning: 3 trials on fold 4 (study runs/studies/s)"
    assert _cells(table) == [
        ["1", "0.00123", "0.0001", "0.7100", "0.0125", ""],
        ["2", "0.03", "0", "failed", "0.0020", ""],
        ["3", "0.01", "5e-05", "0.7400", "0.0131", "chosen"],
    ]
