"""``harness run`` (``harness.cli.run``): the run's row, then where it would stand among the
published runs of its benchmark. The run itself is tested end to end in tests/cli/test_cli.py
and tests/runs/."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = ("--protocol", "tiny", "--set", "epochs=1", "--device", "cpu")


def test_a_run_says_where_it_would_rank_among_the_published_rows(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    published = Path("leaderboards")
    for loss in ("bce", "dice"):  # the published rows, made as a maintainer would
        made = cli(
            "run", "--model", "unet", "--loss", loss, *TINY,
            "--runs-dir", published / "records", "--leaderboards-dir", published,
        )  # fmt: skip
        assert made.code == 0, made.err
    before = sorted((p, p.read_bytes()) for p in published.rglob("*") if p.is_file())
    mine = cli("run", "--model", "unet", "--loss", "combo", *TINY)
    assert mine.code == 0, mine.err
    (table,) = published.glob("*.md")
    (line,) = [s for s in mine.out.splitlines() if s.startswith("would rank")]
    assert line.startswith("would rank ") and f" of 3 in {table}; " in line
    # Nothing of the published folder changed; the run's table went beside its runs.
    assert sorted((p, p.read_bytes()) for p in published.rglob("*") if p.is_file()) == before
    assert (Path("runs") / "leaderboards" / table.name).is_file()
    # A run whose records are the published ones says nothing of the kind.
    again = cli(
        "run", "--model", "unet", "--loss", "jaccard", *TINY,
        "--runs-dir", published / "records", "--leaderboards-dir", published,
    )  # fmt: skip
    assert again.code == 0 and "would rank" not in again.out
