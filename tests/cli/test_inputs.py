"""No output overwrites an input, and text from outside is never terminal markup.

Each command that writes a file refuses, before any work, an output that is one of its
inputs, lies inside a folder it reads (a run folder, a dataset), is an existing folder or
lies below a file: one line, exit 2, every input byte for byte as it was. Folders given as
files are refused before anything trains. A component named with rich's markup (``[/x]``)
prints as it is (``compare``'s entries: tests/cli/test_compare.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.results.leaderboard import regenerate
from harness.results.records import WEIGHTS_NAME
from harness.results.tables import twin_path
from tests.helpers import BENCH, hashes, make_record, put_record


def _one_line(result, code: int = 2) -> str:
    assert result.code == code, (result.code, result.out, result.err)
    assert "Traceback" not in result.err
    (line,) = result.err.strip().splitlines()
    return line


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    """A finished run's folder (its record and weights), a dataset folder, a submission, two
    leaderboards of one benchmark, and an existing folder and file to aim outputs at."""
    run = tmp_path / "runs" / BENCH["id"] / "unetpp-dice" / "seed-0"
    put_record(tmp_path / "runs", f"{BENCH['id']}/unetpp-dice/seed-0", make_record("dice", 0, 0.8))
    (run / WEIGHTS_NAME).write_bytes(b"weights")
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "train" / "labels.json").write_text("{}")
    submission = tmp_path / "submission.csv"
    submission.write_text("image_name,class,rle\n")
    board = regenerate(BENCH["id"], tmp_path / "runs", tmp_path / "boards")
    assert board is not None
    folder = tmp_path / "a-folder"
    folder.mkdir()
    afile = tmp_path / "a-file"
    afile.write_text("x")
    return {
        "run": run,
        "data": data,
        "submission": submission,
        "board": board,
        "folder": folder,
        "file": afile,
        "root": tmp_path,
    }


def _cases(i: dict[str, Path]) -> dict[str, tuple[list[object], str]]:
    """Each refusal: the command line, and what its one line says."""
    run, data, twin = i["run"], i["data"], twin_path(i["board"])
    export = ["export", run, "--format"]
    return {
        "export over the run's weights": (
            [*export, "torchscript", "--out", run / WEIGHTS_NAME],
            "inside the run folder",
        ),
        "export into the run folder": ([*export, "onnx", "--out", run / "m.onnx"], "inside the"),
        "export to a folder": ([*export, "onnx", "--out", i["folder"]], "is a folder"),
        "export below a file": ([*export, "onnx", "--out", i["file"] / "m.onnx"], "is a file"),
        "compare over a twin": (
            ["compare", twin, twin, "--html", twin],
            "which this command reads",
        ),
        "compare over its markdown": (
            ["compare", twin, twin, "--html", i["board"]],
            "which this command reads",
        ),
        "compare to a folder": (["compare", twin, twin, "--html", i["folder"]], "is a folder"),
        "predict over the record": (
            ["predict", run, "--data", data, "--out", run / "record.json"],
            "inside the run folder",
        ),
        "predict into the dataset": (
            ["predict", run, "--data", data, "--out", data / "train" / "labels.json"],
            "inside the dataset folder",
        ),
        "predict to a folder": (["predict", run, "--data", data, "--out", i["folder"]], "folder"),
        "evaluate over the submission": (
            [
                "evaluate",
                "--data",
                data,
                "--submission",
                i["submission"],
                "--json",
                i["submission"],
            ],
            "which this command reads",
        ),
        "evaluate to a folder": (
            ["evaluate", "--data", data, "--submission", i["submission"], "--json", i["folder"]],
            "is a folder",
        ),
        "leaderboard from a file": (
            ["leaderboard", "--runs-dir", i["file"], "--leaderboards-dir", i["folder"]],
            "--runs-dir",
        ),
        "leaderboard into a file": (
            ["leaderboard", "--runs-dir", i["root"] / "runs", "--leaderboards-dir", i["file"]],
            "--leaderboards-dir",
        ),
    }


CASES = list(
    _cases({k: Path(k) for k in ("run", "data", "submission", "board", "folder", "file", "root")})
)


@pytest.mark.parametrize("case", CASES)
def test_an_output_over_an_input_is_refused_before_any_work(
    cli, inputs: dict[str, Path], case: str
) -> None:
    args, says = _cases(inputs)[case]
    before = hashes(inputs["root"])
    started = time.monotonic()
    line = _one_line(cli(*args))
    assert line.startswith("harness: error: ") and says in line, line
    assert time.monotonic() - started < 10  # before any work (an ONNX export takes 25 s)
    assert hashes(inputs["root"]) == before  # every input byte for byte as it was
    assert not list(inputs["root"].rglob("*.lock"))


@pytest.mark.parametrize("option", ["--runs-dir", "--leaderboards-dir"])
def test_run_refuses_a_file_for_a_folder_before_training(cli, tmp_path: Path, option: str) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("x")
    folders = {"--runs-dir": tmp_path / "runs", "--leaderboards-dir": tmp_path / "boards"}
    folders[option] = afile / "below" if option == "--leaderboards-dir" else afile
    args = [a for name, path in folders.items() for a in (name, path)]
    line = _one_line(cli("run", "--model", "unet", "--loss", "dice", "--protocol", "tiny", *args))
    assert line.startswith(f"harness: error: {option} ") and "is a file" in line, line
    assert not (tmp_path / "runs").exists() and afile.read_text() == "x"  # nothing trained


#: A loss with a free-text parameter (its text reaches the terminal in the entry's label).
TAGGED = """
import torch

from harness import hookimpl


def tagged(*, tag: str = "x"):
    \"\"\"BCE, under a tag of the user's choosing.\"\"\"
    return torch.nn.BCEWithLogitsLoss()


@hookimpl
def harness_losses():
    return {"tagged": tagged}
"""


def test_markup_in_a_component_prints_as_it_is(cli, tmp_path: Path) -> None:
    plugin = tmp_path / "tagged.py"
    plugin.write_text(TAGGED)
    result = cli(
        "run", "--model", "unet", "--loss", "tagged:tag=[/x]", "--plugin", plugin,
        "--protocol", "tiny", "--dry-run", "--runs-dir", tmp_path / "runs",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "tagged:tag=[/x]" in result.out
    # A value its factory refuses is one line that shows it as it was given.
    refused = cli(
        "run", "--model", "unet", "--loss", "dice:smooth=[/x]", "--protocol", "tiny",
        "--dry-run", "--runs-dir", tmp_path / "runs",
    )  # fmt: skip
    assert refused.code == 2 and "smooth=[/x] is a str" in refused.err
