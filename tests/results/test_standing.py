"""``harness.results.standing``: where a new row would rank in a published table, and its
verdict against that table's leader, by the table's own rules; nothing written."""

from __future__ import annotations

from pathlib import Path

from harness.results.leaderboard import regenerate
from harness.results.standing import standing
from tests.helpers import make_record, put_record

DICE = {"bce": 0.60, "dice": 0.80, "combo": 0.70}


def _published(tmp_path: Path) -> Path:
    """A published folder: three entries × 3 seeds, their table and its twin."""
    folder = tmp_path / "leaderboards"
    for loss, dice in DICE.items():
        for seed in range(3):
            record = make_record(loss, seed, dice + 0.01 * seed)
            put_record(folder / "records", f"bench/{loss}/seed-{seed}", record)
    regenerate(make_record("dice", 0, 0.8).benchmark_id, folder / "records", folder)
    return folder


def test_a_new_row_is_placed_among_the_published_rows(tmp_path: Path) -> None:
    folder = _published(tmp_path)
    before = sorted((p, p.read_bytes()) for p in folder.rglob("*") if p.is_file())
    mine = [make_record("jaccard", s, 0.65 + 0.01 * s) for s in range(3)]
    found = standing(folder, mine)
    assert found is not None
    assert (found.rank, found.total, found.verdict, found.replaces) == (3, 4, "below", False)
    assert found.line() == (f"would rank 3 of 4 in {found.table}; below #1 beyond noise")
    assert found.table == folder / f"{mine[0].benchmark_id}.md"
    assert sorted((p, p.read_bytes()) for p in folder.rglob("*") if p.is_file()) == before


def test_a_published_row_of_the_same_entry_is_set_aside(tmp_path: Path) -> None:
    folder = _published(tmp_path)
    mine = [make_record("dice", 0, 0.90)]  # one seed of an entry the table has
    found = standing(folder, mine)
    assert found is not None
    assert (found.rank, found.total, found.verdict, found.replaces) == (1, 3, "leader", True)
    assert "(in place of its published row); would lead it" in found.line()


def test_nothing_to_say_without_a_published_table_or_a_success(tmp_path: Path) -> None:
    folder = _published(tmp_path)
    assert standing(tmp_path / "nowhere", [make_record("jaccard", 0, 0.7)]) is None
    assert standing(folder, [make_record("jaccard", 0, 0.7, status="failed")]) is None
    other = {**make_record("dice", 0, 0.8).benchmark, "id": "tiny-other__x"}
    assert standing(folder, [make_record("jaccard", 0, 0.7, bench=other)]) is None
