"""The shared run options (``harness.cli.options``): every ``RunRequest`` field becomes one
option of a command, which gets the request they make; a command's own options come before
or after them as it declares them; fields left out keep their default; a command may change
a shared option's default and help; an older spelling is a hidden option of the same field
(given with the new one: one line); folders that are files are refused before the command
runs. Tested on a made-up command, so nothing is planned or trained."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from harness.cli import options
from harness.errors import HarnessError
from harness.runs.requests import RunRequest, flag, option_fields


@pytest.fixture
def command() -> tuple[typer.Typer, list[tuple[RunRequest, int]]]:
    """A one-command app like ``sweep``: its own ``--times`` before the shared options, no
    ``--tta``, ``--model`` defaulting to unetpp; what it was handed, call by call."""
    heard: list[tuple[RunRequest, int]] = []

    @options.request_options(
        leave_out={"tta"},
        overrides={"model": options.Override("unetpp", "Model (fixed unless varied)")},
    )
    def made_up(
        times: Annotated[int, typer.Option(help="How many")],
        request: RunRequest,
        after: Annotated[str, typer.Option(help="Declared after the request")] = "x",
    ) -> None:
        heard.append((request, times))

    app = typer.Typer()
    app.command()(made_up)
    app.command("other")(lambda: None)  # two commands: typer keeps the command's name
    return app, heard


def _invoke(app: typer.Typer, *args: str):
    return CliRunner().invoke(app, ["made-up", *args])


#: The options the made-up command needs (``--loss`` has no default there).
NEEDED = ("--times", "1", "--loss", "dice")


def test_the_command_gets_the_request_its_options_make(command, tmp_path: Path) -> None:
    app, heard = command
    sets = ("--set", "epochs=1", "--set", "lr=0.1")
    result = _invoke(
        app, "--times", "3", "--loss", "combo", "--seeds", "2", *sets, "--runs-dir", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    ((request, times),) = heard
    assert times == 3
    assert request == RunRequest.from_options(
        model="unetpp", loss="combo", seeds="2", sets=["epochs=1", "lr=0.1"], runs_dir=tmp_path
    )


def test_help_lists_own_options_around_the_shared_ones_as_declared(command) -> None:
    app, _ = command
    text = CliRunner().invoke(app, ["made-up", "--help"], terminal_width=200).output
    at = {name: text.index(name) for name in ("--times", "--model", "--loss", "--after")}
    assert at["--times"] < at["--model"] < at["--loss"] < at["--after"]
    assert "Model (fixed unless varied)" in text and "[default: unetpp]" in text
    assert "--tta" not in text  # left out: its default
    assert "--aug " not in text.replace("--augmentation", "")  # an older spelling: hidden
    shared = {flag(f).name for f in option_fields() if f.name != "tta" and not flag(f).hidden}
    assert all(name in text for name in shared)


def test_an_older_spelling_reads_as_its_field_and_not_both(command, tmp_path: Path) -> None:
    app, heard = command
    folders = ("--runs-dir", str(tmp_path))
    assert _invoke(app, *NEEDED, "--aug", "flip", *folders).exit_code == 0
    assert _invoke(app, *NEEDED, "--augmentation", "flip", *folders).exit_code == 0
    assert heard[0][0] == heard[1][0] and heard[0][0].entry.augmentation == "flip"
    both = _invoke(app, *NEEDED, "--aug", "flip", "--augmentation", "none", *folders)
    assert isinstance(both.exception, HarnessError)
    assert str(both.exception) == "--augmentation given twice (once as --aug)"
    assert len(heard) == 2  # the command never ran


def test_a_file_for_a_folder_is_refused_before_the_command_runs(command, tmp_path: Path) -> None:
    app, heard = command
    afile = tmp_path / "a-file"
    afile.write_text("x")
    for option in ("--runs-dir", "--leaderboards-dir"):
        result = _invoke(app, *NEEDED, option, str(afile))
        assert isinstance(result.exception, HarnessError), result.output
        assert str(result.exception).startswith(f"{option} ") and "is a file" in str(
            result.exception
        )
    assert heard == []
