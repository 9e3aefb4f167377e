"""Every table column is declared once (``harness.results.columns``): a declaration drives the
markdown, the twin's ``columns``, the page and ``harness compare``; numbers read the same in
every one of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.results import columns
from harness.results.columns import (
    COMPARE,
    LEADERBOARD,
    NONE,
    Column,
    ablation,
    chosen_text,
    minus,
    number,
    of_table,
    signed,
)
from harness.results.leaderboard import regenerate
from harness.results.pages import table_view
from harness.results.tables import twin_path
from tests.helpers import BENCH, make_record, put_record


def _board(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    for seed, dice in enumerate([0.80, 0.84]):
        put_record(runs, f"d{seed}", make_record("dice", seed, dice))
    put_record(runs, "b0", make_record("bce", 0, 0.6))
    table = regenerate(BENCH["id"], runs, tmp_path / "boards")
    assert table is not None
    return table


def _page_data(table: Path) -> dict:
    page = table.with_suffix(".html").read_text(encoding="utf-8")
    return json.loads(re.search(r'id="page-data">(.*?)</script>', page, re.S)[1])


def test_a_column_declared_once_shows_in_the_markdown_the_twin_and_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = Column("Seeds", lambda row: len(row["seeds"]), align="right", numeric=True)
    monkeypatch.setattr(columns, "LEADERBOARD", (*LEADERBOARD, seeds))
    table = _board(tmp_path)
    lines = table.read_text(encoding="utf-8").splitlines()
    header = next(line for line in lines if line.startswith("| # |"))
    assert header.endswith("| Device | Seeds |")
    assert lines[lines.index(header) + 1].endswith("|---|---:|")
    first = next(line for line in lines if line.startswith("| 1 |"))
    assert first.endswith("| cpu | 2 |")
    assert json.loads(twin_path(table).read_text())["columns"][-1] == "Seeds"
    view = _page_data(table)["view"]
    assert view["columns"][-1] == {"name": "Seeds", "slug": "seeds", "numeric": True}
    assert [r["values"][-1] for r in view["rows"]] == [2, 1]
    page = table.with_suffix(".html").read_text(encoding="utf-8")
    assert "<td class=num>2</td></tr>" in page


def test_the_page_shows_the_markdowns_cells_and_the_twins_values(tmp_path: Path) -> None:
    table = _board(tmp_path)
    twin = json.loads(twin_path(table).read_text())
    view = table_view(table, twin)
    markdown = table.read_text(encoding="utf-8")
    for row, data in zip(view.rows, twin["rows"], strict=True):
        assert "| " + " | ".join(row.cells) + " |" in markdown
        assert row.values[2] == data["mean_dice"] and row.values[7] == data["worst_class"]["dice"]
        assert row.values[3] == data["interval"][0] and row.values[4] == data["rank_band"][0]
    assert [c.name for c in view.columns] == [c.name for c in LEADERBOARD] == twin["columns"]
    numeric = {c.name for c in view.columns if c.numeric}
    assert {"#", "Mean Dice", "95 % CI", "Rank (95 %)", "n", "Worst class", "Params (M)"} <= numeric
    assert not {"Entry", "vs #1", "Device", "GFLOPs"} & numeric  # GFLOPs: no value, only —


def test_a_cell_reads_its_value_as_declared() -> None:
    row = {
        "rank": 2,
        "interval": [0.87734, 0.908],
        "rank_band": [1, 7],
        "worst_class": {"class": "Pisiform", "dice": 0.5},
        "gflops": None,
    }
    by_name = {c.name: c for c in LEADERBOARD}
    assert by_name["#"].cell(row) == "2"
    assert by_name["95 % CI"].cell(row) == "[0.8773, 0.9080]"
    assert by_name["95 % CI"].value(row) == 0.87734  # sorted by its low end
    assert by_name["Rank (95 %)"].cell(row) == "1–7"
    assert by_name["Rank (95 %)"].cell({**row, "rank_band": [16, 16]}) == "16"
    assert by_name["95 % CI"].cell({**row, "interval": None}) == NONE  # not modelled
    assert by_name["Rank (95 %)"].cell({**row, "rank_band": None}) == NONE
    assert by_name["Worst class"].cell(row) == "Pisiform 0.5000"
    assert by_name["Worst class"].value(row) == 0.5
    assert by_name["GFLOPs"].cell(row) == NONE
    assert [c.rule for c in LEADERBOARD[:7]] == [
        "---:", "---", "---:", "---:", ":---:", "---:", ":---:"
    ]  # fmt: skip
    ranged = ["Params (M)", "Train img/s", "Infer img/s", "Device-hours"]
    assert [c.name for c in LEADERBOARD if c.ranged] == ranged


def test_an_ablations_columns_follow_its_axis_and_tuning() -> None:
    names = [c.name for c in ablation("loss", tuned=False)]
    assert names == ["Loss", "Dice", "95 % CI", "n", "vs best"]
    tuned = of_table({"kind": "ablation", "axis": "model", "budget": "tuned: 6 trials"})
    assert [c.name for c in tuned] == ["Model", "Dice", "95 % CI", "n", "vs best", "Chosen"]
    empty = {"value": "focal", "key": None, "n": 0, "runs": []}
    assert [c.cell(empty) for c in tuned] == ["focal", NONE, NONE, "0", "no succeeded run", NONE]
    chosen = {"value": "dice", "chosen": {"lr": 0.0107, "weight_decay": 2.03e-05}}
    assert tuned[-1].cell(chosen) == "lr=0.0107, weight_decay=2.03e-05"
    assert of_table({"kind": "leaderboard"}) == LEADERBOARD


def test_compares_columns_read_a_delta() -> None:
    row = {
        "entry": "unetpp · dice",
        "a_dice": 0.8,
        "b_dice": 0.79,
        "dice": -0.01,
        "low": -0.03,
        "high": 0.01,
        "noise": "within noise",
        "images_per_s": 1.25,
        "peak_mb": None,
    }
    cells = [c.cell(row) for c in COMPARE]
    assert cells == [
        "unetpp · dice", "0.8000", "0.7900", "-0.0100", "[-0.0300, +0.0100]", "within noise",
        "+1.2", "—",
    ]  # fmt: skip
    assert [c.terminal_name for c in COMPARE if c.terminal_name is not None] == [""]


def test_numbers_read_the_same_everywhere() -> None:
    assert number(None, 4) == number("x", 4) == number(True, 2) == NONE
    assert number(0.123456, 4) == "0.1235" and number(0.000123456) == "0.000123"
    assert number(100, 0) == "100"
    assert signed(0.05, 4) == "+0.0500" and signed(None, 1) == NONE
    assert minus(0.7, 0.8) == pytest.approx(-0.1) and minus(None, 0.8) is None
    assert chosen_text({"lr": 0.01, "weight_decay": 1e-4}) == "lr=0.01, weight_decay=0.0001"
