"""Fixtures of the data tests: a small phantom written once per module, and a copy of it
with a cache of its own for each test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.data.phantom import synthesize


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five ID folders (ten labelled 96² images) and one test folder, never modified."""
    return synthesize(tmp_path_factory.mktemp("phantom") / "data", ids=5, size=96, test_ids=1)


@pytest.fixture
def data(pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of ``pristine`` that the test may change, with a fresh, empty cache."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    return Path(shutil.copytree(pristine, tmp_path / "data"))
