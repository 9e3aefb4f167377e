"""A newcomer's first afternoon, in a fresh clone: every command the README's tour and
docs/plugins.md show (under the ``tiny`` protocol, one epoch, where they train), run from the
clone's root as a user would. Afterwards ``git status`` lists nothing of ours — only the
plugin files the guide asks the user to write — and every published record is intact."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import subprocess_env

ROOT = Path(__file__).resolve().parents[1]
FAST = ("--protocol", "tiny", "--set", "epochs=1")


def _plugin_code() -> str:
    """The plugin module docs/plugins.md's step 1 writes (its first heredoc)."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    found = re.search(r"__init__\.py <<'EOF'\n(.*?)\nEOF\n", text, re.S)
    assert found, "docs/plugins.md: step 1's module not found"
    return found.group(1) + "\n"


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    where = tmp_path_factory.mktemp("tour") / "harness"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(where)], check=True)
    return where


def _harness(clone: Path, *args: str | Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "harness", *map(str, args)],
        cwd=clone,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"harness {' '.join(map(str, args))}:\n{result.stderr}"
    return result.stdout + result.stderr


def test_the_tour_leaves_nothing_of_ours_changed(clone: Path, tmp_path: Path) -> None:
    # The README's tour (its default run takes minutes: here the tiny protocol stands in).
    said = _harness(clone, "run", "--model", "unetpp", "--loss", "dice", *FAST)
    assert "Leaderboard runs/leaderboards/" in said
    _harness(clone, "list")
    _harness(clone, "list", "protocols")
    _harness(clone, "show", "losses", "combo")
    swept = _harness(clone, "sweep", "--vary", "loss=bce,dice,combo", "--model", "unet", *FAST)
    assert "wrote runs/leaderboards/" in swept
    _harness(clone, "leaderboard", "--runs-dir", "leaderboards/records",
             "--leaderboards-dir", tmp_path / "boards")  # fmt: skip
    (table,) = (clone / "runs" / "leaderboards").glob("tiny-*[0-9a-f].md")
    _harness(clone, "compare", table, table)
    (run,) = [p.parent for p in (clone / "runs").rglob("record.json") if "unetpp" in str(p)]
    _harness(clone, "predict", run, "--split", "val", "--out", tmp_path / "val.csv",
             "--data", _phantom(clone))  # fmt: skip
    _harness(clone, "evaluate", "--data", _phantom(clone), "--submission", tmp_path / "val.csv")
    # docs/plugins.md, without packaging: the user's module as a file beside them.
    (clone / "smooth_bce.py").write_text(_plugin_code())
    plugin = ("--plugin", "smooth_bce.py")
    assert "smooth-bce" in _harness(clone, "list", "losses", *plugin)
    _harness(clone, "check-plugin", "smooth-bce", *plugin)
    _harness(clone, "run", "--model", "unet", "--loss", "smooth-bce", *plugin, *FAST)
    _harness(clone, "run", "--model", "unetpp", "--loss", "smooth-bce:smoothing=0.1", *plugin,
             *FAST)  # fmt: skip
    # Nothing of ours changed: no table, page or index written into leaderboards/, no
    # record touched; the only new files are the user's plugin.
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert status == ["?? smooth_bce.py"], status


def _phantom(clone: Path) -> Path:
    """The tiny protocol's phantom, where the runs made it (the cache folder)."""
    from harness.data.sources import cache_dir

    (folder,) = (cache_dir() / "synthetic").glob("phantom-v2-ids5-size64-seed0")
    return folder
