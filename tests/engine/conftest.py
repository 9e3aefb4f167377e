"""Fixtures of the engine's tests: the small test model's plugin file and its run left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import PLUGIN, record_of


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small test model (``tests.helpers.PLUGIN``) as a plugin file."""
    path = tmp_path_factory.mktemp("plugin") / "small_cnn.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, plugin: Path) -> dict:
    """The run left alone (in-process, through the library the command line calls)."""
    from harness.engine.events import NullObserver
    from harness.runs.dispatch import execute
    from harness.runs.planning import plan
    from harness.runs.requests import RunRequest

    root = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        request = RunRequest.from_options(
            model="small-cnn:delay=0.03",
            loss="dice",
            augmentation="basic",
            plugins=[str(plugin)],
            protocol="tiny",
            sets=["epochs=4", "batch_size=1"],
            device="cpu",
            runs_dir=root / "runs",
            leaderboards_dir=root / "boards",
        )
        execute(plan(request), NullObserver())
    return record_of(root / "runs")
