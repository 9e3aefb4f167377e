"""``harness select`` on the command line: the table written and the command that ships #1
printed; bad input (a benchmark without kept predictions, members of two benchmarks,
``--max-members 0``) one line naming the culprit, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import selection_benchmark, selection_data, selection_runs


def _sure(truth: np.ndarray, name: str, fold: int) -> np.ndarray:
    return np.where(truth, 0.8, 0.1).astype(np.float32)


def _unsure(truth: np.ndarray, name: str, fold: int) -> np.ndarray:
    p = _sure(truth, name, fold)
    p[:, ::3] = 0.4  # every third column missed
    return p


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("select-cli")
    data = selection_data(root)
    members = {"sure": {"none": _sure}, "unsure": {"none": _unsure}}
    bench = selection_runs(root / "runs", data, members)
    return {"root": root, "data": data, "bench": bench}


def test_select_writes_the_table_and_prints_the_command_that_ships_it(cli, runs: dict) -> None:
    result = cli(
        "select", runs["bench"], "--runs-dir", runs["root"] / "runs", "--data", runs["data"],
        "--postprocessor", "largest-component",
    )  # fmt: skip
    assert result.code == 0, result.err
    table = runs["root"] / "runs" / "leaderboards" / f"{runs['bench']}.select.md"
    assert f"wrote {table}" in result.out
    assert "#1 " in result.out and "(leader)" in result.out
    assert "held-out test images: not scored" in result.out
    ship = next(line for line in result.out.splitlines() if line.startswith("ship #1: "))
    assert ship.startswith("ship #1: harness predict ") and "/sure" in ship


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("no_predictions", "kept its predictions on every fold; train its entries with"),
        ("two_benchmarks", "an entry of benchmark"),
        ("no_members", "--max-members 0: give at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path: Path, how: str, said: str) -> None:
    data = selection_data(tmp_path)
    members = {"sure": {"none": _sure}}
    bench = selection_runs(tmp_path / "runs", data, members, keep=how != "no_predictions")
    args = ["select", bench, "--runs-dir", tmp_path / "runs", "--data", data]
    if how == "two_benchmarks":
        mine = selection_benchmark(data)
        old = mine["protocol"]["hash"]  # another protocol's hash: another benchmark
        other = {
            **mine,
            "id": mine["id"].replace(old, "abcdef0123"),
            "protocol": {**mine["protocol"], "hash": "abcdef0123"},
        }
        other_id = selection_runs(tmp_path / "runs", data, members, bench=other)
        args += ["sure", tmp_path / "runs" / other_id / "sure"]
    if how == "no_members":
        args += ["--max-members", "0"]
    result = cli(*args)
    assert result.code == 2, result.err
    assert result.err.startswith("harness: error: ") and said in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "runs" / "leaderboards").exists()
