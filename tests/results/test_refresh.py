"""``harness leaderboard`` over every table: one that cannot be written (a full disk) keeps
the one there as it was and costs none of the others; one line, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.results.leaderboard import leaderboard_path
from tests.helpers import BENCH, make_record, no_space, other_benchmark, put_record

OTHER = other_benchmark("def")


def _records(runs: Path) -> None:
    for bench in (BENCH, OTHER):
        for seed in (0, 1):
            record = make_record("dice", seed, 0.5 + seed / 10, bench=bench)
            put_record(runs, f"{bench['id']}/dice/seed-{seed}", record)


def test_a_table_that_cannot_be_written_costs_none_of_the_others(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    _records(runs)
    full = leaderboard_path(boards, BENCH["id"])
    with monkeypatch.context() as patched:
        refused = no_space(patched, lambda path: path.name.startswith(full.stem))
        result = cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards)
    assert result.code == 1 and refused, result.err
    assert "Traceback" not in result.err
    (line,) = result.err.strip().splitlines()
    assert line.startswith(f"harness: error: {boards}: the disk is full"), line
    assert f"not written: the table of {BENCH['id']}" in line and OTHER["id"] not in line
    written = leaderboard_path(boards, OTHER["id"])
    assert f"wrote {written}" in result.out.replace("\n", "")
    assert written.is_file() and not full.exists()
    assert not [p for p in boards.iterdir() if ".tmp-" in p.name]

    again = cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards)
    assert again.code == 0 and full.is_file(), again.err
