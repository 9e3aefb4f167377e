"""``python -m harness`` (``harness/__main__.py``) is the ``harness`` console script: the same
entry point, its help, and its one-line errors with their exit codes."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from tests.helpers import subprocess_env


def python_m_harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )


def test_it_calls_the_console_scripts_entry_point() -> None:
    import harness.__main__

    (script,) = entry_points(group="console_scripts", name="harness")
    assert harness.__main__.main is script.load()


def test_help_lists_the_commands_and_exits_0() -> None:
    done = python_m_harness("--help")
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    for command in ("run", "sweep", "tune", "leaderboard", "predict", "check-plugin"):
        assert f" {command} " in done.stdout, command


def test_a_bad_option_is_one_line_and_exits_2() -> None:
    done = python_m_harness("--no-such-option")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "harness: error: No such option: --no-such-option (see `harness --help`)"
    ]
