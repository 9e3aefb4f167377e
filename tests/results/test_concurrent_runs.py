"""Four `harness run` processes finishing at once: four records, one aggregated row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_four_concurrent_runs_aggregate_into_one_row(tmp_path: Path) -> None:
    from harness.data.sources import synthetic_dataset

    synthetic_dataset(5, 64, 0)  # generated once up front, as the first run would
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness",
                "run",
                "--model",
                "unet",
                "--loss",
                "dice",
                "--protocol",
                "tiny",
                "--set",
                "epochs=1",
                "--seeds",
                f"{seed},",
                "--device",
                "cpu",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--leaderboards-dir",
                str(tmp_path / "b"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for seed in ("0", "1", "2", "3")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-1500:]
    records = sorted((tmp_path / "runs").rglob("record.json"))
    assert len(records) == 4
    assert sorted(json.loads(p.read_text())["seed"] for p in records) == [0, 1, 2, 3]
    (board,) = (tmp_path / "b").glob("*.md")
    ranked = [line for line in board.read_text().splitlines() if line.startswith("| 1 |")]
    assert len(ranked) == 1 and "| 4 |" in ranked[0]
    assert not any(line.startswith("| 2 |") for line in board.read_text().splitlines())
