"""The leaderboards folder's ``index.html`` (``harness.results.site``): one row per benchmark,
made from the folder's JSON twins alone, linking its leaderboard's page and its ablations'
pages; the same twins give the same bytes; a damaged twin of another table is named in one
line and left out, and stops no table from being written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.results.leaderboard import regenerate
from harness.results.site import index_path, index_text, index_view
from tests.helpers import BENCH, pictured_runs, seeded_runs


def _board(bench: str, rows: list[tuple[str, float, int]]) -> dict:
    """A leaderboard's twin, as much of it as the index reads."""
    return {
        "kind": "leaderboard",
        "benchmark": {
            "id": bench,
            "protocol": {"label": "tiny", "hash": "abc"},
            "dataset": {"name": "phantom"},
        },
        "rows": [{"entry": e, "mean_dice": d, "n": n} for e, d, n in rows],
    }


def test_the_index_has_a_row_per_benchmark_linking_its_tables(tmp_path: Path) -> None:
    other = "tiny-fff__phantom-1234"
    new = {
        tmp_path / f"{BENCH['id']}.ablation-model.md": {
            "kind": "ablation",
            "benchmark_id": BENCH["id"],
        },
        tmp_path / f"{BENCH['id']}.md": _board(
            BENCH["id"], [("unet · dice", 0.81, 3), ("fpn", 0.7, 2)]
        ),
        tmp_path / f"{BENCH['id']}.ablation-loss.md": {
            "kind": "ablation",
            "benchmark_id": BENCH["id"],
        },
        tmp_path / f"{other}.ablation-loss.md": {"kind": "ablation", "benchmark_id": other},
    }
    view = index_view(tmp_path, new)
    assert [row.title for row in view.rows] == [BENCH["id"], other]
    first, second = view.rows
    assert first.cells == (
        f'<a href="{BENCH["id"]}.html">{BENCH["id"]}</a>',
        "tiny <code>abc</code>",
        "phantom",
        "2",
        "5",
        "unet · dice",
        "0.8100",
        f'<a href="{BENCH["id"]}.ablation-loss.html">loss</a>, '
        f'<a href="{BENCH["id"]}.ablation-model.html">model</a>',
    )
    assert first.values[3:7] == (2, 5, "unet · dice", 0.81)  # what the page sorts by
    # a benchmark with ablations and no leaderboard is listed all the same
    assert second.cells[0] == other and second.cells[1:7] == ("—",) * 6
    assert second.cells[7] == f'<a href="{other}.ablation-loss.html">loss</a>'
    assert view.data["tables"] == sorted(path.name for path in new)


def test_the_same_twins_give_the_same_index(tmp_path: Path) -> None:
    boards = tmp_path / "boards"
    regenerate(BENCH["id"], seeded_runs(tmp_path), boards)
    text = index_text(boards)
    assert index_path(boards).read_text(encoding="utf-8") == text  # as published
    assert f'href="{BENCH["id"]}.html"' in text and str(tmp_path) not in text
    again = tmp_path / "again"
    again.mkdir()
    for twin in sorted(boards.glob("*.json"), reverse=True):  # the twins alone, in another order
        shutil.copy(twin, again / twin.name)
    assert index_text(again) == text
    # a table about to be written is listed from its data, not from its twin there
    renamed = _board(BENCH["id"], [("renamed", 0.5, 1)])
    assert "renamed" in index_text(again, {again / f"{BENCH['id']}.md": renamed})


@pytest.mark.parametrize(
    "twin",
    [
        '{"format": "harness-table/1", "kind": "leaderboard"}',
        '{"format": "harness-table/1", "kind": "leaderboard", "rows": [1]}',
        "{",
    ],
)
def test_a_damaged_twin_of_another_table_is_named_and_skipped(
    cli, tmp_path: Path, twin: str
) -> None:
    runs, _ = pictured_runs(tmp_path)
    boards = tmp_path / "boards"
    boards.mkdir()
    damaged = boards / "other-abc__phantom-1234.json"
    damaged.write_text(twin)
    for _ in range(2):  # and every later regeneration, too
        result = cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards)
        assert result.code == 0 and "Traceback" not in result.err, result.err
        (line,) = result.err.strip().splitlines()
        assert line.startswith(f"harness: {damaged}: ") and "left out of index.html" in line
    assert damaged.read_text() == twin
    index = (boards / "index.html").read_text()
    assert f"{BENCH['id']}.html" in index and "other-abc" not in index
