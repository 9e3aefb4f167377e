"""``scripts/gpu_bench.py``: its dry run on the CPU gives every figure; without a GPU the
real mode is one line and exit 2."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

SCRIPT = REPO / "scripts" / "gpu_bench.py"


def run_script(*args: str | Path, tmp_path: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",  # no GPU, even on a machine with one
        "HARNESS_CACHE_DIR": str(tmp_path / "cache"),  # the script uses its own; in case
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=tmp_path,
    )


def test_dry_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "figures" / "gpu.json"
    done = run_script("--dry-run", "--json", out, tmp_path=tmp_path, timeout=150)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    positive = [
        ("harness", "images_per_s"),
        ("harness", "step_ms"),
        ("harness", "peak_memory_mb"),
        ("bare", "images_per_s"),
        ("bare", "step_ms"),
        ("bare", "peak_memory_mb"),
        ("loader", "images_per_s"),
        ("loader", "step_ms"),
        ("loader", "wall_s"),
    ]
    for group, key in positive:
        value = figures[group][key]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (group, key)
    for group in ("harness", "bare"):
        assert math.isfinite(figures[group]["loss"])
    share = figures["loader"]["data_wait_share"]
    assert 0 <= share < 1 and figures["loader"]["wait_s"] >= 0
    assert figures["time_ratio"] > 0 and math.isfinite(figures["time_ratio"])
    assert figures["synthesis_s"] >= 0 and figures["cache_s"] >= 0 and figures["total_s"] > 0
    assert figures["device"] == "cpu" and figures["torch"] and figures["precision"] == "fp32"
    assert figures["dry_run"] is True and figures["channels_last"] is True
    settings = figures["settings"]
    assert (settings["model"], settings["loss"]) == ("unetpp", "dice")
    # Same seed, same weights, same first batches: the two loops train alike on the CPU.
    assert figures["harness"]["loss"] == figures["bare"]["loss"]
    # The table names the card and torch version and shows every figure.
    table = done.stdout
    assert "| figure | harness step | bare loop |" in table
    assert figures["torch"] in table and "cpu" in table
    for label in ("images/s", "ms per step", "MiB", "harness / bare", "data-wait share"):
        assert label in table, label


@pytest.mark.parametrize("args", [(), ("--batch", "4", "--json", "never.json")])
def test_without_cuda_the_real_mode_is_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    done = run_script(*args, tmp_path=tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_bench: error: no CUDA device"), lines
    assert "--dry-run" in lines[0]
    assert not (tmp_path / "never.json").exists()
