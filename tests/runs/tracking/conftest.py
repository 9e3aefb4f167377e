"""The trackers' tests share the small test model as a plugin file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import PLUGIN


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "small_cnn.py"
    path.write_text(PLUGIN)
    return path
