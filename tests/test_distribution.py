"""The distribution has a name of its own, and a plugin that depends on it gets this project.

The name ``harness`` on the package index is an unrelated project: a plugin declaring
``dependencies = ["harness"]`` would install that. Here both wheels (this project's and
the example plugin's) are built offline from copies of the sources (nothing is written
into the repository) and installed, without dependencies, into a fresh virtual
environment; the example's requirement must name the distribution that holds
``harness/__init__.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "harness-example-plugin"
NAME = "segmentation-harness"
IGNORE = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache")

#: Run inside the fresh environment: what the example requires, and who provides it.
PROBE = """
import json, re
from importlib import metadata
example = metadata.distribution("harness-example-plugin")
required = [re.split(r"[\\s;<>=!~\\[(]", r, maxsplit=1)[0] for r in example.requires or []]
installed = {}
for name in required:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        continue
    files = [str(f) for f in dist.files or []]
    where = str(dist.locate_file("harness/__init__.py"))
    installed[name] = {"name": dist.metadata["Name"], "files": files, "where": where}
print(json.dumps({"required": required, "installed": installed}))
"""


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; in the fresh environment, pass ``cwd`` outside the repository (a
    checkout's ``*.egg-info`` would be found on the path otherwise)."""
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def wheel(sources: Path, out: Path) -> Path:
    """Build one wheel offline, with the setuptools of this environment."""
    ok(run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
           "--disable-pip-version-check", "-w", out, sources))  # fmt: skip
    [built] = [p for p in out.glob("*.whl") if p.name.startswith(sources.name.replace("-", "_"))]
    return built


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site packages) holding both wheels; returns its python."""
    root = tmp_path_factory.mktemp("distribution")
    project = root / "segmentation_harness"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, project / name)
    for name in ("harness", "plugins"):
        shutil.copytree(REPO / name, project / name, ignore=IGNORE)
    example = root / "harness_example_plugin"
    shutil.copytree(EXAMPLE, example, ignore=IGNORE)
    wheels = root / "wheels"
    built = [wheel(project, wheels), wheel(example, wheels)]
    venv = root / "venv"
    ok(run(sys.executable, "-m", "venv", "--without-pip", venv))
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    ok(run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-index",
           "--no-deps", "--disable-pip-version-check", *built))  # fmt: skip
    return python


def test_the_distribution_is_not_named_harness() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["name"] == NAME != "harness"
    assert project["scripts"]["harness"] == "harness.cli:main"
    example = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    assert NAME in example["dependencies"] and "harness" not in example["dependencies"]


def test_the_example_requirement_resolves_to_this_project(environment: Path) -> None:
    venv = environment.parents[1]
    probe = json.loads(ok(run(environment, "-I", "-c", PROBE, cwd=venv)))
    assert NAME in probe["required"], probe["required"]
    assert "harness" not in probe["required"]
    provider = probe["installed"].get(NAME)
    assert provider is not None, f"{NAME} is not installed in the fresh environment"
    assert provider["name"] == NAME
    assert "harness/__init__.py" in provider["files"]
    assert Path(provider["where"]).is_relative_to(venv), provider["where"]
    assert "harness_plugins/__init__.py" in provider["files"]


def test_pip_check_finds_the_example_requirement_satisfied(environment: Path) -> None:
    result = run(sys.executable, "-m", "pip", "--python", environment, "check",
                 "--disable-pip-version-check", cwd=environment.parents[1])  # fmt: skip
    report = result.stdout + result.stderr
    # The harness's own dependencies (torch, ...) are not installed here, and that is fine;
    # the example's requirement on the harness must not be among the missing.
    example = [line for line in report.splitlines() if line.startswith("harness-example-plugin")]
    assert not any(NAME in line for line in example), report
    assert "harness-example-plugin 0.1.0 requires torch" in report  # pip check looked
