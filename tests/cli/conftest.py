"""The command-line tests share one real ``harness run`` (``tiny_run``): the package's end-to-end
tests read its output, ``leaderboard`` regenerates its table and ``predict`` scores its model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One real `harness run` under the tiny protocol, shared by the tests that read its output
    (it keeps its predictions: ``--keep-predictions``)."""
    root = tmp_path_factory.mktemp("tiny")
    env_cache = tmp_path_factory.getbasetemp() / "cache"
    cmd = [
        sys.executable, "-m", "harness", "run", "--model", "unetpp", "--loss", "dice",
        "--protocol", "tiny", "--runs-dir", str(root / "runs"),
        "--leaderboards-dir", str(root / "boards"), "--keep-predictions",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env={**os.environ, "HARNESS_CACHE_DIR": str(env_cache), "COLUMNS": "200"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {"root": root, "stdout": proc.stdout, "stderr": proc.stderr}
