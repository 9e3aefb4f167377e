"""Runs spread over machines: separate runs folders, copied into one, one table regenerated.

Two "machines" are two ``--runs-dir`` folders, each running its own seed of the same entry
(as ``docs/scaling.md`` tells users to). Copying both trees into one folder and running
``harness leaderboard`` on it gives one table whose row aggregates both seeds, and the
table is a pure function of the records: regenerated again, it has the same bytes.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

RUN = (
    "run", "--model", "unet", "--loss", "dice", "--protocol", "tiny",
    "--set", "epochs=1", "--device", "cpu",
)  # fmt: skip


def _ranked(board: Path) -> list[list[str]]:
    """The leaderboard's ranked rows, split into cells."""
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in board.read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    ]


@pytest.mark.slow
def test_runs_of_two_machines_merge_into_one_row(cli: Callable[..., Any], tmp_path: Path) -> None:
    machines = {seed: tmp_path / f"machine-{seed}" for seed in (0, 1)}
    for seed, machine in machines.items():
        result = cli(
            *RUN, "--seeds", f"{seed},",
            "--runs-dir", machine / "runs", "--leaderboards-dir", machine / "leaderboards",
        )  # fmt: skip
        assert result.code == 0, result.err
        (own,) = (machine / "leaderboards").glob("*.md")
        assert [row[5] for row in _ranked(own)] == ["1"]  # each machine saw one seed

    merged = tmp_path / "merged"
    for machine in machines.values():
        shutil.copytree(machine / "runs", merged, dirs_exist_ok=True)
    paths = sorted(merged.rglob("record.json"))
    records = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    assert sorted(r["seed"] for r in records) == [0, 1]
    assert {p.parent.parent for p in paths} == {paths[0].parent.parent}  # one entry folder

    out = tmp_path / "out"
    result = cli("leaderboard", "--runs-dir", merged, "--leaderboards-dir", out)
    assert result.code == 0, result.err
    (board,) = out.glob("*.md")
    assert board.stem == records[0]["benchmark"]["id"]
    (row,) = _ranked(board)
    dice = [r["mean_dice"] for r in records]
    assert row[0] == "1" and row[1].startswith("unet · dice")
    assert row[2] == f"{statistics.fmean(dice):.4f}"
    assert row[3:6] == ["—", "—", "2"]  # one row: nothing to compare, no interval
    twin = json.loads(board.with_suffix(".json").read_text(encoding="utf-8"))
    assert twin["rows"][0]["std"] == statistics.stdev(dice)  # the ± stays in the twin

    first = board.read_bytes()
    assert cli("leaderboard", "--runs-dir", merged, "--leaderboards-dir", out).code == 0
    assert board.read_bytes() == first
    again = tmp_path / "again"
    assert cli("leaderboard", "--runs-dir", merged, "--leaderboards-dir", again).code == 0
    assert (again / board.name).read_bytes() == first
