"""``harness power TABLE --detect DELTA`` (``harness.cli.power``): one line on stdout, from a
fresh process in under five seconds; a difference that is no positive number below 1, or none
given, is one line and exit 2. (The plan itself, and the tables it cannot plan from:
tests/results/test_power.py.)"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, subprocess_env

MAIN = REPO / "leaderboards" / "synthetic-2267276f85__phantom-v2-ids20-size256-seed0-d52b2e9a.md"


def test_it_answers_in_under_five_seconds(tmp_path: Path) -> None:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "harness", "power", str(MAIN), "--detect", "0.005"],
        capture_output=True, text=True, cwd=tmp_path, env=subprocess_env(), timeout=60,
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1
    assert elapsed < 5, f"harness power took {elapsed:.1f} s"


@pytest.mark.parametrize(
    ("detect", "says"),
    [
        ("-1", "must be a positive difference in mean Dice (e.g. 0.005), not -1"),
        ("0", "not 0"),
        ("nan", "not nan"),
        ("inf", "not inf"),
        ("2", "--detect 2: a difference in mean Dice is below 1"),
        ("x", "Invalid value for '--detect'"),
    ],
)
def test_a_bad_difference_is_one_line_and_exit_2(cli, detect: str, says: str) -> None:
    result = cli("power", MAIN, "--detect", detect)
    line = result.err.strip()
    assert result.code == 2 and "\n" not in line and says in line, result.err


def test_a_missing_detect_is_a_usage_error(cli) -> None:
    result = cli("power", MAIN)
    assert result.code == 2 and "--detect" in result.err
