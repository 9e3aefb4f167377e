"""What ``run``, ``sweep`` and ``tune`` share (``harness.cli.launch``): ranks other than the
main one go quiet, the planner prepares under a bar and knows where the runs train, a bar of
runs only for an executor that announces each run, and a table's header and row for the
command to print."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.cli import launch, root
from harness.results.leaderboard import regenerate
from tests.helpers import BENCH, seeded_runs


@pytest.mark.parametrize("rank, quiet", [("0", False), ("1", True)])
def test_ranks_other_than_the_main_one_go_quiet(
    monkeypatch: pytest.MonkeyPatch, rank: str, quiet: bool
) -> None:
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setattr(root.out, "quiet", False)
    monkeypatch.setattr(root.err, "quiet", False)
    launch.quiet_ranks()
    assert root.out.quiet is quiet and root.err.quiet is quiet


@pytest.mark.parametrize("remote", [False, True])
def test_the_planner_prepares_under_a_bar_and_knows_where_runs_train(
    capsys: pytest.CaptureFixture[str], remote: bool
) -> None:
    with launch.preparing(SimpleNamespace(remote=remote)) as planner:
        assert planner.remote is remote  # the GPUs bound --nproc only for runs trained here
        planner.progress(0, 4)
        planner.progress(4, 4)
    assert planner.progress is None  # later plans reuse what it prepared, with no bar
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Preparing the dataset: started"
    assert err[-1].startswith("Preparing the dataset: done in ")


def test_a_bar_of_runs_only_for_an_executor_that_announces_each_run() -> None:
    with launch.reporting(SimpleNamespace(announces=True)) as (observer, runs):
        assert runs is not None and observer is not None
    with launch.reporting(SimpleNamespace(announces=False)) as (_, runs):
        assert runs is None  # the runs' own bars say it


def test_a_row_comes_with_its_header(tmp_path: Path) -> None:
    board = regenerate(BENCH["id"], seeded_runs(tmp_path), tmp_path / "boards")
    header, row = launch.row_of(board, "unetpp · dice · adamw · flat · none").splitlines()
    assert header.startswith("| # | Entry | Mean Dice |") and row.startswith(
        "| 1 | unetpp · dice ·"
    )
    assert launch.row_of(board, "no such entry").splitlines()[1:] == []  # no row: none shown
