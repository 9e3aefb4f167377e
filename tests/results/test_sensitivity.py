"""The tuned ablation table's picture of every trial, drawn from the tuned rows' records
(``harness.results.sensitivity``); the committed tables' pictures coming back byte for byte
from the published records is ``tests/test_published_tables.py``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from harness.results import sensitivity
from harness.results.ablation import ablation_data, write_ablation_table
from harness.results.records import iter_records
from harness.results.rows import rows
from tests.helpers import BENCH, make_record, put_record

BUDGET = "tuned: 3 trials (qmc seed 0) over lr [0.0001, 0.3] log, validated on fold 1"


def _tuning(halving: bool) -> dict[str, Any]:
    """A tuned record's tuning: 3 configurations; under halving 1 and 2 went on to rung 2."""
    trials: list[dict[str, Any]] = [
        {"number": 0, "values": {"lr": 0.001}, "mean_dice": 0.5},
        {"number": 1, "values": {"lr": 0.01}, "mean_dice": 0.6},
        {"number": 2, "values": {"lr": 0.1}, "mean_dice": None},  # failed
    ]
    if halving:
        trials = [dict(t, rung=1) for t in trials]
        trials[2]["mean_dice"] = 0.55
        trials += [
            {"number": 1, "values": {"lr": 0.01}, "mean_dice": 0.8, "rung": 2},
            {"number": 2, "values": {"lr": 0.1}, "mean_dice": 0.7, "rung": 2},
        ]
    space = {"lr": {"low": 1e-4, "high": 0.3, "log": True}}
    if halving:
        space["optimizer.momentum"] = {"low": 0.8, "high": 0.99, "log": False}
    return {
        "budget": BUDGET,
        "tuning": {"trials": 3, "fold": 1, "space": space},
        "trials": trials,
        "chosen": {"trial": 1, "values": {"lr": 0.01}, "mean_dice": 0.8 if halving else 0.6},
    }


def _table(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """Runs of two tuned values (dice under halving, bce under the full schedule) and a third
    without a run; the twin's data of their tuned ablation table."""
    runs = tmp_path / "runs"
    made = {}
    for loss, halving in (("dice", True), ("bce", False)):
        record = dataclasses.replace(make_record(loss, 0, 0.8), tuning=_tuning(halving))
        made[loss] = put_record(runs, f"{BENCH['id']}/{loss}/seed-0", record)
    rows = [
        {"value": "dice", "runs": [made["dice"].relative_to(runs).as_posix()]},
        {"value": "bce", "runs": ["missing/record.json", made["bce"].relative_to(runs).as_posix()]},
        {"value": "combo", "runs": []},  # no succeeded run: no points
    ]
    return runs, {"axis": "loss", "budget": BUDGET, "rows": rows}


def test_each_value_shows_every_configuration_at_its_deepest_rung(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, data = _table(tmp_path)
    drawn: dict[str, Any] = {}

    def curves(series: Any, space: Any, path: Path, title: str = "") -> Path:
        drawn.update(series=series, space=space, path=path, title=title)
        return path

    monkeypatch.setattr(sensitivity, "tuning_curves", curves)
    table = tmp_path / "b.ablation-loss-tuned.md"
    assert sensitivity.draw(table, data, runs) == tmp_path / "b.ablation-loss-tuned.png"
    dice, bce = drawn["series"]  # combo has no record: no series
    assert dice == ("dice", [({"lr": 0.001}, 0.5), ({"lr": 0.01}, 0.8), ({"lr": 0.1}, 0.7)],
                    ({"lr": 0.01}, 0.8))  # fmt: skip
    assert bce == ("bce", [({"lr": 0.001}, 0.5), ({"lr": 0.01}, 0.6), ({"lr": 0.1}, None)],
                   ({"lr": 0.01}, 0.6))  # fmt: skip
    # The union of the values' spaces, by name; log where any value sampled on one.
    assert drawn["space"] == [("lr", 1e-4, 0.3, True), ("optimizer.momentum", 0.8, 0.99, False)]
    assert drawn["title"] == f"Loss: every trial of each value ({BUDGET})"


def test_the_union_of_spaces_takes_the_widest_range() -> None:
    spaces = [
        {"lr": {"low": 1e-3, "high": 1.0, "log": True}},
        {"lr": {"low": 1e-5, "high": 1e-2, "log": False}, "weight_decay": {"low": 0, "high": 1}},
    ]
    assert sensitivity.union(spaces) == [("lr", 1e-5, 1.0, True), ("weight_decay", 0, 1, True)]


def test_a_tuned_table_is_written_with_its_picture_and_an_untuned_one_without(
    tmp_path: Path,
) -> None:
    runs, _ = _table(tmp_path)
    found = list(iter_records(runs))
    table = [(row.entry.loss.name, key, row) for key, row in _rows(found).items()]
    runs_of = {id(r): p.relative_to(runs).as_posix() for p, r in found}
    boards = tmp_path / "boards"
    tuned = ablation_data("loss", table, BENCH["id"], runs_of=runs_of, budget=BUDGET)
    path = write_ablation_table(boards / f"{BENCH['id']}.ablation-loss-tuned.md", tuned, runs)
    assert path is not None
    picture = path.with_suffix(".png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"]({picture.name})" in path.read_text()  # the markdown shows it
    fixed = ablation_data("loss", table, BENCH["id"], runs_of=runs_of)
    path = write_ablation_table(boards / f"{BENCH['id']}.ablation-loss.md", fixed, runs)
    assert path is not None and not path.with_suffix(".png").exists()
    assert sensitivity.draw(path, fixed, runs) is None


def _rows(found: list[tuple[Path, Any]]) -> dict[str, Any]:
    return {row.entry.key: row for row in rows((r for _, r in found), BENCH["id"])}
