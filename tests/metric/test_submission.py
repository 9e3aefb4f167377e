"""Submission CSV: atomic round trip, and each shape error names the file and row."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from harness.classes import CLASSES
from harness.errors import HarnessError
from harness.metric.submission import HEADER, read_submission, write_submission


def rows_for(*images: str) -> list[tuple[str, str, str]]:
    return [
        (img, cls, f"{i + 1} 2" if i % 3 else "") for img in images for i, cls in enumerate(CLASSES)
    ]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out" / "submission.csv"
    write_submission(path, rows_for("image1.png", "image2.png"))
    assert path.read_text().splitlines()[0] == ",".join(HEADER)
    assert [p.name for p in path.parent.iterdir()] == ["submission.csv"]  # no temp file left
    got = read_submission(path)
    assert list(got) == ["image1.png", "image2.png"]
    assert list(got["image1.png"]) == list(CLASSES)
    assert got["image2.png"]["finger-2"] == "2 2" and got["image2.png"]["finger-1"] == ""


def test_rows_in_any_class_order_come_back_in_class_order(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    write_submission(path, list(reversed(rows_for("a.png"))))
    assert list(read_submission(path)["a.png"]) == list(CLASSES)


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    write_submission(path, rows_for("a.png"))
    before = path.read_text()

    def broken():
        yield ("b.png", "finger-1", "")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_submission(path, broken())
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]


def test_written_with_the_usual_umask_permissions(tmp_path: Path) -> None:
    """Through ``harness.atomic`` like every other file: not mkstemp's private 0600."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "s.csv"
        write_submission(path, rows_for("a.png"))
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o002)
        write_submission(path, rows_for("a.png"))  # over an existing file: a fresh one
        assert stat.S_IMODE(path.stat().st_mode) == 0o664
    finally:
        os.umask(old)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def good_lines(image: str = "a.png") -> list[str]:
    return [",".join(HEADER)] + [f"{image},{cls}," for cls in CLASSES]


@pytest.mark.parametrize(
    ("mutate", "needles"),
    [
        (lambda ls: ["image,class,rle", *ls[1:]], ["row 1", "header"]),
        (lambda ls: [], ["row 1", "empty"]),
        (lambda ls: ls[:3] + ["a.png,finger-3"] + ls[4:], ["row 4", "columns"]),
        (lambda ls: ls[:2] + ["a.png,finger-99,"] + ls[3:], ["row 3", "finger-99"]),
        (lambda ls: [*ls, "a.png,Ulna,1 1"], ["row 31", "duplicate", "Ulna"]),
        (lambda ls: ls[:5] + ls[6:], ["'a.png'", "first missing: 'finger-5'"]),
        (lambda ls: [ln.replace("a.png", "../a.png") for ln in ls], ["row 2", "../a.png"]),
        (lambda ls: [ln.replace("a.png", "ID1/a.png") for ln in ls], ["row 2", "ID1/a.png"]),
        (lambda ls: [ln.replace("a.png", "ID1\\a.png") for ln in ls], ["row 2", "separators"]),
    ],
)
def test_errors_name_file_and_row(tmp_path: Path, mutate, needles: list[str]) -> None:
    path = write_lines(tmp_path / "sub.csv", mutate(good_lines()))
    with pytest.raises(HarnessError) as info:
        read_submission(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for needle in needles:
        assert needle in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="nope.csv"):
        read_submission(tmp_path / "nope.csv")


def test_long_rle_fields_are_read(tmp_path: Path) -> None:
    long_rle = " ".join(f"{2 * i + 1} 1" for i in range(40_000))  # > csv's 128 KiB default
    rows = [(img, cls, long_rle if cls == "Ulna" else "") for img, cls, _ in rows_for("a.png")]
    path = tmp_path / "s.csv"
    write_submission(path, rows)
    assert read_submission(path)["a.png"]["Ulna"] == long_rle
