"""(issue 32) Fast answers: ``harness list``, ``harness --help`` and a bad component parameter,
each a fresh process as a user starts it; targets on the 2-core machine: ``list`` at most 1 s,
a bad parameter's error at most 2 s.

Each group holds this checkout (``harness``) and, side by side, the same command run from a
baseline checkout (``baseline``) when ``HARNESS_BENCH_BASELINE`` names one (e.g. a clone of
main from before the change: ``HARNESS_BENCH_BASELINE=/path/to/main make bench``); without
it only this checkout is measured. Before the change the baseline's ``harness list`` imported
torch and SMP through the built-in plugins, and a bad parameter (``dice:smooth=abc``) prepared
the dataset, built the model and failed at the first training step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASELINE = os.environ.get("HARNESS_BENCH_BASELINE")

#: Command -> (what it is, the exit code this checkout must give).
COMMANDS: dict[tuple[str, ...], tuple[str, int]] = {
    ("list",): ("harness list", 0),
    ("--help",): ("harness --help", 0),
    ("run", "--model", "unet", "--loss", "dice:smooth=abc", "--protocol", "tiny"): (
        "a bad component parameter", 2,
    ),
}  # fmt: skip


def _command(checkout: Path, args: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m harness ARGS`` with ``checkout``'s code (and its built-in plugins) first."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout), str(checkout / "plugins")])}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
    )  # fmt: skip


def _measure(benchmark, checkout: Path, args: tuple[str, ...], cwd: Path):
    benchmark.group = f"cli: {COMMANDS[args][0]} ({' '.join(args)})"
    return benchmark.pedantic(
        _command, args=(checkout, args, cwd), rounds=5, iterations=1, warmup_rounds=1
    )


@pytest.mark.parametrize("args", list(COMMANDS), ids=lambda a: COMMANDS[a][0])
def test_harness(benchmark, args: tuple[str, ...], tmp_path: Path) -> None:
    done = _measure(benchmark, REPO, args, tmp_path)
    assert done.returncode == COMMANDS[args][1], done.stderr[-2000:]
    if done.returncode == 2:
        assert done.stderr.startswith("harness: error: ") and "smooth=abc" in done.stderr
    assert list(tmp_path.iterdir()) == []  # answered before any run folder


@pytest.mark.skipif(BASELINE is None, reason="HARNESS_BENCH_BASELINE names no baseline checkout")
@pytest.mark.parametrize("args", list(COMMANDS), ids=lambda a: COMMANDS[a][0])
def test_baseline(benchmark, args: tuple[str, ...], tmp_path: Path) -> None:
    _measure(benchmark, Path(BASELINE or "."), args, tmp_path)
