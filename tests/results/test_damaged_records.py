"""A damaged record never silently shrinks a table: it is named on the terminal, listed in the
table's header, and ``harness leaderboard --strict`` exits 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.results.leaderboard import regenerate
from tests.helpers import BENCH, make_record, put_record

ROW = "| 1 | unetpp · dice · adamw · flat · none |"


def _two_seeds(runs: Path) -> tuple[Path, Path]:
    """One entry with two seeds, in the runs/ layout (benchmark/entry/seed-N)."""
    folder = Path(BENCH["id"]) / "unetpp-dice"
    return (
        put_record(runs, str(folder / "seed-0"), make_record("dice", 0, 0.80)),
        put_record(runs, str(folder / "seed-1"), make_record("dice", 1, 0.84)),
    )


def _truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def _drop_key(path: Path, key: str) -> None:
    data = json.loads(path.read_text())
    del data[key]
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_truncate, "is not valid JSON (line"),
        (lambda p: _drop_key(p, "mean_dice"), "lacks mean_dice"),
        (
            lambda p: p.write_text(p.read_text().replace('"mean_dice": 0.84', '"mean_dice": null')),
            "mean_dice: missing in a succeeded run",
        ),
    ],
)
def test_a_damaged_record_is_named_and_listed_in_the_header(
    tmp_path: Path, damage, reason: str
) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    _, second = _two_seeds(runs)
    whole = regenerate(BENCH["id"], runs, boards).read_text()
    assert f"{ROW} 0.8200 | — | — | 2 |" in whole and "Excluded" not in whole  # one row: no model
    damage(second)
    heard = []
    text = regenerate(BENCH["id"], runs, boards, report=heard.append).read_text()
    assert [u.path for u in heard] == [second] and reason in heard[0].reason
    assert f"{ROW} 0.8000 |" in text  # the row shrank to n = 1, and says why:
    relative = second.relative_to(runs).as_posix()
    assert "- **Excluded**: 1 record of this benchmark could not be used" in text
    assert f"  - `{relative}` {heard[0].reason}" in text
    # Same records, same bytes: the header names the file relative to the runs folder.
    assert regenerate(BENCH["id"], runs, tmp_path / "again").read_text() == text


def test_leaderboard_names_excluded_records_and_strict_exits_1(cli, tmp_path: Path) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    _, second = _two_seeds(runs)
    args = ("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards)
    clean = cli(*args, "--strict")
    assert clean.code == 0 and "warning" not in clean.err
    _truncate(second)
    stray = runs / "stray" / "record.json"  # belongs to no benchmark: still named
    stray.parent.mkdir()
    stray.write_text("not json")
    loose = cli(*args)
    assert loose.code == 0, loose.err
    lines = [line for line in loose.err.splitlines() if line.startswith("harness: warning:")]
    assert len(lines) == 2, loose.err
    assert f"{second}: is not valid JSON" in lines[0] and "left out of its table" in lines[0]
    assert str(stray) in lines[1]
    board = (boards / f"{BENCH['id']}.md").read_text()
    assert "**Excluded**" in board and "seed-1/record.json" in board
    strict = cli(*args, "--strict")
    assert strict.code == 1
    assert "--strict: 2 record(s) could not be used" in strict.err
    one = cli("leaderboard", BENCH["id"], "--runs-dir", runs, "--leaderboards-dir", boards)
    assert one.code == 0 and one.err.count("harness: warning:") == 1


def test_only_damaged_records_is_an_error_that_names_them(cli, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    first, second = _two_seeds(runs)
    _truncate(first)
    _truncate(second)
    result = cli("leaderboard", BENCH["id"], "--runs-dir", runs, "--leaderboards-dir", tmp_path)
    assert result.code == 2 and "Traceback" not in result.err
    assert "no records of benchmark" in result.err and "is not valid JSON" in result.err
