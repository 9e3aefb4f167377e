"""The one atomic writer: a write that fails (a full disk) leaves the earlier file as it was
and no temp file, and says which file, in one line."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from harness.atomic import append_whole, atomic_write_bytes, cannot_write, out_of_space
from tests.helpers import fill_up, full_tmpfs, no_space


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp-" in p.name]


def test_a_refused_write_keeps_the_earlier_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "table.md"
    atomic_write_bytes(target, b"earlier")
    refused = no_space(monkeypatch, lambda path: path == target)
    with pytest.raises(OSError) as raised:
        atomic_write_bytes(target, b"later")
    assert refused == [target] and out_of_space(raised.value)
    assert raised.value.filename == str(target)  # the file, not its temp, is named
    assert target.read_bytes() == b"earlier" and not _temps(tmp_path)
    assert cannot_write(raised.value) == f"{tmp_path}: the disk is full (No space left on device)"


def test_a_write_to_a_full_tmpfs_keeps_the_earlier_file(tmp_path: Path) -> None:
    folder = tmp_path / "disk"
    with full_tmpfs(folder) as fill:
        fill.unlink()
        target = folder / "record.json"
        atomic_write_bytes(target, b"{}")
        fill_up(fill)
        with pytest.raises(OSError) as raised:
            atomic_write_bytes(target, bytes(64 * 1024))
        assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
        assert target.read_bytes() == b"{}" and not _temps(folder)


def test_an_append_that_does_not_fit_is_cut_off_whole(tmp_path: Path) -> None:
    """``metrics.jsonl`` keeps its earlier lines and no half of a new one."""
    folder = tmp_path / "disk"
    with full_tmpfs(folder) as fill:
        fill.unlink()
        log = folder / "metrics.jsonl"
        append_whole(log, b'{"epoch": 1}\n')
        fill_up(fill)
        with pytest.raises(OSError) as raised:  # past the page the first line is on
            append_whole(log, b'{"epoch": 2, "pad": "' + b"x" * 10_000 + b'"}\n')
        assert out_of_space(raised.value) and raised.value.filename == str(log)
        assert log.read_bytes() == b'{"epoch": 1}\n'


def test_other_write_errors_name_the_file() -> None:
    denied = OSError(errno.EACCES, "Permission denied", "/boards/table.md")
    assert not out_of_space(denied)
    assert cannot_write(denied) == "/boards/table.md: cannot be written (Permission denied)"


def test_several_files_are_written_all_or_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.atomic import atomic_write_files

    files = {tmp_path / name: b"earlier " + name.encode() for name in ("t.json", "t.md", "t.html")}
    atomic_write_files(files)
    later = {path: b"later" for path in files}
    refused = no_space(monkeypatch, lambda path: path.name == "t.html")  # the last one
    with pytest.raises(OSError) as raised:
        atomic_write_files(later)
    assert refused and raised.value.filename == str(tmp_path / "t.html")
    assert {p: p.read_bytes() for p in files} == files  # the earlier set, not a mixture
    assert not _temps(tmp_path)
    monkeypatch.undo()
    atomic_write_files(later)
    assert {p: p.read_bytes() for p in files} == later
