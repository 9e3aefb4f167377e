"""The third-party workflow end to end: the example distribution installs, lists, runs and conforms.

The example is copied out of the repository and installed into a temporary folder
(building writes ``build/`` and ``*.egg-info`` next to the sources, and nothing here
may write into the repository); each command then runs in a fresh interpreter with
that folder on ``PYTHONPATH``, exactly as an installed plugin is seen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "harness-example-plugin"
DISTRIBUTION, VERSION = "harness-example-plugin", "0.1.0"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example, built from a copy and installed into its own folder (no deps, offline)."""
    root = tmp_path_factory.mktemp("example")
    sources = root / "harness-example-plugin"
    shutil.copytree(EXAMPLE, sources, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(sources)],
        check=True,
        capture_output=True,
        text=True,
    )  # fmt: skip
    return target


def harness(site: Path, cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return python(site, cwd, "-m", "harness", *map(str, args))


def python(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the interpreter with the example on the path, in ``cwd``, with a private cache."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env["HARNESS_CACHE_DIR"] = str(cwd / "cache")
    env["COLUMNS"] = "200"
    env["NO_ALBUMENTATIONS_UPDATE"] = "1"
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def ok(result: subprocess.CompletedProcess[str], args: Sequence[str] = ()) -> str:
    assert result.returncode == 0, f"{args}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def test_list_names_the_components_with_distribution_and_version(
    site: Path, tmp_path: Path
) -> None:
    out = ok(harness(site, tmp_path, "list"))
    for name in ("mini-unet", "soft-dice"):
        row = next((line for line in out.splitlines() if f" {name} " in line), None)
        assert row is not None, f"{name} missing from `harness list`:\n{out}"
        assert "example" in row and f"{DISTRIBUTION} {VERSION}" in row, row


def test_components_pass_the_conformance_checks(site: Path, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from harness.components.conformance import check_component\n"
        "from harness.components.registry import Registry\n"
        "registry = Registry.load()\n"
        "reports = [check_component(registry, 'models', 'mini-unet'),\n"
        "           check_component(registry, 'losses', 'soft-dice')]\n"
        "for report in reports:\n"
        "    print(report.summary)\n"
        "    for check in report.failures:\n"
        "        print('  FAILED', check.name, check.detail)\n"
        "sys.exit(0 if all(report.ok for report in reports) else 1)\n"
    )
    out = ok(python(site, tmp_path, "-c", script))
    assert f"model 'mini-unet' from example ({DISTRIBUTION} {VERSION}) conforms" in out
    assert f"loss 'soft-dice' from example ({DISTRIBUTION} {VERSION}) conforms" in out


def test_its_own_tests_pass_with_one_harness_import(site: Path, tmp_path: Path) -> None:
    tests = EXAMPLE / "tests"
    assert (
        "from harness.testing import assert_conforms" in (tests / "test_conformance.py").read_text()
    )
    shutil.copytree(tests, tmp_path / "tests")
    out = ok(python(site, tmp_path, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"))
    assert "2 passed" in out


@pytest.mark.slow
def test_runs_under_tiny_into_a_leaderboard(site: Path, tmp_path: Path) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "leaderboards"
    args = ("run", "--model", "mini-unet", "--loss", "soft-dice", "--protocol", "tiny",
            "--runs-dir", runs, "--leaderboards-dir", boards)  # fmt: skip
    ok(harness(site, tmp_path, *args), list(map(str, args)))

    [record_path] = runs.glob("*/*/seed-0/record.json")
    record = json.loads(record_path.read_text())
    assert record["status"] == "succeeded"
    for kind, name in (("model", "mini-unet"), ("loss", "soft-dice")):
        assert record["entry"][kind]["name"] == name
        assert record["entry"][kind]["distribution"] == DISTRIBUTION
        assert record["entry"][kind]["version"] == VERSION
    [board] = boards.glob("*.md")
    assert "mini-unet" in board.read_text() and "soft-dice" in board.read_text()
