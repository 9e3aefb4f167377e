"""Paths from outside: an output is never an input, a folder, inside a folder the command
reads, or below a file; a folder option is never a file; a path a record names is resolved
inside its runs folder or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.paths import check_folder, check_output, confined


def test_an_output_may_not_be_an_input_a_folder_or_inside_one_read(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    weights = run / "weights.safetensors"
    weights.write_bytes(b"w")
    afile = tmp_path / "file"
    afile.write_text("x")
    (tmp_path / "hard").hardlink_to(afile)
    (tmp_path / "soft").symlink_to(afile)
    refused = {
        run: "is a folder",
        weights: "inside the run folder",
        run / "new.onnx": "inside the run folder",
        afile / "x.onnx": "is a file, not a folder",
        tmp_path / "hard": "which this command reads",
        tmp_path / "soft": "which this command reads",
        tmp_path / "sub" / ".." / "file": "which this command reads",
    }
    for out, says in refused.items():
        with pytest.raises(HarnessError, match=says):
            check_output(out, "--out", [afile], [(run, "the run folder")])
    fine = tmp_path / "new" / "model.onnx"
    assert check_output(fine, "--out", [afile], [(run, "the run folder")]) == fine


def test_a_folder_option_may_not_be_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    for path in (afile, afile / "below"):
        with pytest.raises(HarnessError, match="is a file, not a folder"):
            check_folder(path, "--runs-dir")
    assert check_folder(tmp_path / "new", "--runs-dir") == tmp_path / "new"


@pytest.mark.parametrize(
    "named",
    ["../outside", "/etc/passwd", "a/../../outside", "..", "", "C:\\\\x", "link/x.png"],
)
def test_a_path_out_of_its_folder_is_not_resolved(tmp_path: Path, named: str) -> None:
    runs = tmp_path / "runs"
    (runs / "a").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (runs / "link").symlink_to(tmp_path / "outside")
    assert confined(runs, named) is None


def test_a_path_inside_its_folder_is(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert confined(tmp_path, "a/b/c.png") == tmp_path / "a" / "b" / "c.png"
    assert confined(tmp_path, "a\\b") == tmp_path / "a" / "b"
