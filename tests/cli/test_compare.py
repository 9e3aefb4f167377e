"""``harness compare`` (``harness.cli.compare``): two tables aligned by entry, the Dice and
cost deltas, what is only in one, ``--fail-below`` naming each row that dropped (exit 1), two
benchmarks refused unless ``--across-benchmarks``, and entries printed as they are, never
read as markup. (The comparison itself: tests/results/test_compare.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.results.leaderboard import regenerate
from harness.results.tables import twin_path
from tests.helpers import BENCH, other_benchmark, seeded_runs


def _one_line(result, code: int = 2) -> str:
    assert result.code == code, (result.code, result.out, result.err)
    assert "Traceback" not in result.err
    (line,) = result.err.strip().splitlines()
    return line


def _table(root: Path, dice: dict[str, float], bench: dict = BENCH) -> Path:
    """A table of ``bench`` with one row per loss at its Dice; its JSON twin."""
    for loss, value in dice.items():
        seeded_runs(root, bench, loss, value)
    board = regenerate(bench["id"], root / "runs", root / "boards")
    assert board is not None
    return twin_path(board)


def test_rows_are_aligned_by_entry_and_a_drop_below_the_bar_fails(cli, tmp_path: Path) -> None:
    a = _table(tmp_path / "a", {"dice": 0.8, "bce": 0.7})
    b = _table(tmp_path / "b", {"dice": 0.6, "combo": 0.7})
    shown = cli("compare", a, b)
    assert shown.code == 0, shown.err
    (row,) = [line for line in shown.out.splitlines() if "· dice ·" in line]
    assert "-0.2000" in row  # B minus A
    assert "only in A: unetpp · bce" in shown.out and "only in B: unetpp · combo" in shown.out
    failed = cli("compare", a, b, "--fail-below", "0.1")
    assert failed.code == 1
    (line,) = failed.err.strip().splitlines()
    assert line.startswith("harness: unetpp · dice") and "Dice dropped by 0.2000 (> 0.1)" in line
    assert cli("compare", a, b, "--fail-below", "0.3").code == 0


@pytest.mark.parametrize("entry", ["unet[/x]", "unet [bold]x", "dice :smile: x"])
def test_compare_prints_an_entry_with_markup_as_it_is(cli, tmp_path: Path, entry: str) -> None:
    twin = _table(tmp_path, {"dice": 0.8})
    data = json.loads(twin.read_text())
    data["rows"][0]["entry"] = entry
    twin.write_text(json.dumps(data))
    result = cli("compare", twin, twin, "--fail-below", "-1")
    assert result.code == 1, result.err  # every row "dropped" by more than -1: named
    assert entry in result.out.replace("\n", "") and f"harness: {entry}: Dice dropped" in result.err


def test_compare_names_two_benchmarks_and_compares_them_only_when_asked(
    cli, tmp_path: Path
) -> None:
    other = other_benchmark("def")
    other["protocol"] = {**other["protocol"], "fields": {"epochs": 3}}
    a = _table(tmp_path / "a", {"dice": 0.8})
    b = _table(tmp_path / "b", {"dice": 0.8}, other)
    line = _one_line(cli("compare", a, b))
    assert BENCH["id"] in line and other["id"] in line, line
    assert "protocol fields that differ: epochs 2 → 3" in line and "--across-benchmarks" in line
    page = tmp_path / "compare.html"
    across = cli("compare", a, b, "--across-benchmarks", "--html", page)
    assert across.code == 0, across.err
    assert across.out.startswith(f"benchmarks differ: A is {BENCH['id']}, B is {other['id']}")
    assert "epochs 2 → 3" in across.out.splitlines()[0]
    assert "Benchmarks differ" in page.read_text() and "epochs 2 → 3" in page.read_text()
    assert across.out.strip().endswith(f"wrote {page}")
    same = cli("compare", a, a)
    assert same.code == 0 and "benchmarks differ" not in same.out
