"""``harness leaderboard`` (``harness.cli.leaderboard``): the tables regenerated from the
records, the same bytes as the run wrote; by default beside the runs
(``<runs-dir>/leaderboards``), one benchmark when named, a ``wrote`` line per table; an
unknown benchmark is one line that leaves nothing behind. (Records it leaves out and
``--strict``: tests/results/test_damaged_records.py.)"""

from __future__ import annotations

from pathlib import Path

from tests.helpers import BENCH, other_benchmark, seeded_runs


def test_leaderboard_regenerates_same_bytes(tiny_run: dict, cli) -> None:
    root = tiny_run["root"]
    runs, boards = root / "runs", root / "boards"
    result = cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", root / "again")
    assert result.code == 0, result.err
    (again,) = (root / "again").glob("*.md")
    (first,) = boards.glob("*.md")
    assert again.read_bytes() == first.read_bytes()
    assert "| 1 | unetpp" in again.read_text()


def test_every_benchmark_by_default_one_when_named(cli, tmp_path: Path) -> None:
    other = other_benchmark("def")
    runs = seeded_runs(tmp_path, BENCH)
    seeded_runs(tmp_path, other)
    every = cli("leaderboard", "--runs-dir", runs)
    assert every.code == 0, every.err
    tables = runs / "leaderboards"  # beside the runs unless named
    wrote = sorted(line for line in every.out.splitlines() if line.startswith("wrote "))
    assert wrote == sorted(f"wrote {tables / b['id']}.md" for b in (BENCH, other))
    boards = tmp_path / "boards"
    one = cli("leaderboard", other["id"], "--runs-dir", runs, "--leaderboards-dir", boards)
    assert one.code == 0 and one.out.splitlines() == [f"wrote {boards / other['id']}.md"]
    assert sorted(p.name for p in boards.glob("*.md")) == [f"{other['id']}.md"]


def test_an_unknown_benchmark_leaves_nothing_behind(cli, tmp_path: Path) -> None:
    runs = seeded_runs(tmp_path, BENCH)
    boards = tmp_path / "boards"
    result = cli("leaderboard", "nosuch-bench", "--runs-dir", runs, "--leaderboards-dir", boards)
    assert result.code == 2 and "Traceback" not in result.err
    (line,) = result.err.strip().splitlines()
    assert "no records of benchmark 'nosuch-bench'" in line
    assert not boards.exists() and not list(tmp_path.rglob("*.lock"))
    made = cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards)
    assert made.code == 0 and not list(tmp_path.rglob("*.lock"))
