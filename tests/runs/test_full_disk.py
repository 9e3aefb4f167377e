"""A full disk costs no run and prints no traceback: each succeeded run's Dice is said as it
lands; a table, a failed record or a run's pictures that cannot be written is one line at
the end (exit 1), and the next ``harness leaderboard`` (or ``--resume``) writes what is
missing. Tested with a fault-injecting writer (``tests.helpers.no_space``) and with small
tmpfs mounts filled up (``tests.helpers.full_tmpfs``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.results.records import RECORD_NAME, read_record
from tests.helpers import PLUGIN, full_tmpfs, no_space

#: A plugin whose model fails in its first forward pass.
BROKEN = """
import torch

from harness import hookimpl


class Broken(torch.nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.body = torch.nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x):
        raise RuntimeError("the broken model broke")


@hookimpl
def harness_models():
    return {"broken": lambda *, num_classes, in_channels, encoder=None: Broken(
        in_channels, num_classes
    )}
"""


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The test models' plugin folder, a runs folder and a leaderboards folder."""
    (tmp_path / "small.py").write_text(PLUGIN)
    (tmp_path / "broken.py").write_text(BROKEN)
    return tmp_path, tmp_path / "runs", tmp_path / "boards"


def _run(plugins: Path, runs: Path, boards: Path, *more: str) -> list[str | Path]:
    return [
        "run", "--model", "small-cnn", "--loss", "dice",
        "--plugin", plugins / "small.py", "--plugin", plugins / "broken.py",
        "--protocol", "tiny", "--set", "epochs=1", "--set", "batch_size=2", "--device", "cpu",
        "--runs-dir", runs, "--leaderboards-dir", boards, "--seeds", "2", *more,
    ]  # fmt: skip


def _said(err: str) -> list[str]:
    """The command's own lines (``harness: ...``)."""
    return [line for line in err.splitlines() if line.startswith("harness:")]


def _records(runs: Path) -> list[str]:
    found = [read_record(p) for p in sorted(runs.rglob(RECORD_NAME))]
    return [r.status if r is not None else "unreadable" for r in found]


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp-" in p.name]


def _table_runs(boards: Path) -> int:
    (twin,) = boards.glob("*.json")
    return sum(row["n"] for row in json.loads(twin.read_text())["rows"])


def test_a_table_that_cannot_be_written_costs_no_run(
    cli, folders: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leaderboards folder refuses every write: both seeds train and keep their records,
    each one's Dice is said as it lands, and one line ends the command (exit 1); with
    space, ``harness leaderboard`` writes the table with both runs."""
    plugin, runs, boards = folders
    with monkeypatch.context() as patched:
        refused = no_space(patched, lambda path: boards in path.parents)
        result = cli(*_run(plugin, runs, boards))
    assert result.code == 1, result.err[-2000:]
    assert refused and "Traceback" not in result.err
    (line,) = _said(result.err)
    assert f"{boards}: the disk is full (No space left on device)" in line, line
    assert f"harness leaderboard --runs-dir {runs} --leaderboards-dir {boards}" in line
    assert result.err.count(": succeeded, mean Dice") == 2  # said as each landed
    assert "seed 0: mean Dice" in result.out and "seed 1: mean Dice" in result.out
    assert _records(runs) == ["succeeded", "succeeded"]
    assert not _temps(boards) and not list(boards.glob("*.md"))

    again = cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards)
    assert again.code == 0, again.err
    assert _table_runs(boards) == 2


def test_resume_and_leaderboard_on_a_full_disk_say_one_line(
    cli, folders: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--resume`` of finished runs, and ``harness leaderboard``, while the table cannot be
    written: the table there is kept as it was, one line, exit 1."""
    plugin, runs, boards = folders
    assert cli(*_run(plugin, runs, boards)).code == 0
    table = next(boards.glob("*.md"))
    before = table.read_bytes()
    with monkeypatch.context() as patched:
        no_space(patched, lambda path: boards in path.parents)
        resumed = cli(*_run(plugin, runs, boards, "--resume"))
        board = cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards)
    for result in (resumed, board):
        assert result.code == 1 and "Traceback" not in result.err, result.err[-2000:]
        (line,) = _said(result.err)
        assert "the disk is full" in line and str(boards) in line, line
    assert resumed.err.count("already succeeded") == 2
    assert table.read_bytes() == before and not _temps(boards)


def test_a_run_whose_own_write_finds_the_disk_full_ends_alone(
    cli, folders: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 0's final weights cannot be written: seed 0 fails with one line, seed 1 still
    trains; ``--resume`` finishes seed 0 from its checkpoint."""
    plugin, runs, boards = folders
    with monkeypatch.context() as patched:
        no_space(
            patched, lambda path: path.name == "weights-final.safetensors" and "seed-0" in str(path)
        )
        result = cli(*_run(plugin, runs, boards))
    assert result.code == 1 and "Traceback" not in result.err, result.err[-2000:]
    (line,) = _said(result.err)
    assert "seed 0 failed" in line and "the disk is full" in line and "--resume" in line, line
    assert "seed 1: succeeded, mean Dice" in result.err
    assert _records(runs) == ["succeeded"] and not _temps(runs)

    again = cli(*_run(plugin, runs, boards, "--resume"))
    assert again.code == 0, again.err[-2000:]
    assert "seed 0: resuming from" in again.err
    assert _records(runs) == ["succeeded", "succeeded"] and _table_runs(boards) == 2


def test_pictures_that_cannot_be_written_cost_no_result(
    cli, folders: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 0's record is written, then its pictures are not: the record stands (in the
    table), its Dice is said, and one line says what is missing."""
    plugin, runs, boards = folders
    with monkeypatch.context() as patched:
        no_space(patched, lambda path: path.suffix == ".png" and "seed-0" in str(path))
        result = cli(*_run(plugin, runs, boards))
    assert result.code == 1 and "Traceback" not in result.err, result.err[-2000:]
    (line,) = _said(result.err)
    assert "the disk is full" in line and "the pictures of seed 0" in line, line
    assert result.err.count(": succeeded, mean Dice") == 2
    assert _records(runs) == ["succeeded", "succeeded"] and _table_runs(boards) == 2


def test_a_failed_record_that_cannot_be_written_is_still_one_line(
    cli, folders: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin, runs, boards = folders
    args = _run(plugin, runs, boards)
    args[args.index("small-cnn")] = "broken"
    with monkeypatch.context() as patched:
        no_space(patched, lambda path: path.name == RECORD_NAME)
        result = cli(*args)
    assert result.code == 1 and "Traceback" not in result.err, result.err[-2000:]
    (line,) = _said(result.err)
    assert line.startswith("harness: run failed: 2 of 2 runs failed"), line
    assert "the broken model broke" in line and "failed record was not written" in line
    assert _records(runs) == [] and not _temps(runs)


@pytest.mark.slow
def test_a_full_leaderboards_disk(cli, folders: tuple[Path, Path, Path]) -> None:
    """``--leaderboards-dir`` on a full 2 MB tmpfs: both seeds train, one line, exit 1, no
    temp file; with space, ``harness leaderboard`` writes the table with n = 2."""
    plugin, runs, boards = folders
    with full_tmpfs(boards) as fill:
        result = cli(*_run(plugin, runs, boards))
        assert result.code == 1 and "Traceback" not in result.err, result.err[-2000:]
        (line,) = _said(result.err)
        assert f"{boards}: the disk is full" in line, line
        assert _records(runs) == ["succeeded", "succeeded"]
        assert not _temps(boards)
        fill.unlink()
        again = cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards)
        assert again.code == 0, again.err
        assert _table_runs(boards) == 2


@pytest.mark.slow
def test_a_full_runs_disk(cli, folders: tuple[Path, Path, Path]) -> None:
    """``--runs-dir`` on a full tmpfs: the runs fail, the command ends with one line and no
    traceback or temp file; with space, ``--resume`` finishes them."""
    plugin, runs, boards = folders
    with full_tmpfs(runs, size="8m") as fill:
        result = cli(*_run(plugin, runs, boards))
        assert result.code == 1 and "Traceback" not in result.err, result.err[-2000:]
        (line,) = _said(result.err)
        assert line == result.err.strip().splitlines()[-1], result.err[-2000:]
        assert "No space left on device" in line, line
        assert not _temps(runs)
        fill.unlink()
        again = cli(*_run(plugin, runs, boards, "--resume"))
        assert again.code == 0, again.err[-2000:]
        assert _records(runs) == ["succeeded", "succeeded"] and _table_runs(boards) == 2


def test_a_sweep_and_a_tune_whose_tables_cannot_be_written(
    cli, folders: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every run of a sweep, and every trial and seed of a tune, trains and keeps its record;
    the tables (leaderboards and ablation) are one line at the end, exit 1."""
    plugins, runs, boards = folders
    common = [
        "--model", "small-cnn", "--loss", "dice", "--plugin", plugins / "small.py",
        "--protocol", "tiny", "--set", "epochs=1", "--set", "batch_size=2",
        "--device", "cpu", "--seeds", "1", "--runs-dir", runs, "--leaderboards-dir", boards,
    ]  # fmt: skip
    with monkeypatch.context() as patched:
        no_space(patched, lambda path: boards in path.parents)
        swept = cli("sweep", "--vary", "loss=dice,bce", *common)
        tuned = cli("tune", "--trials", "1", *common)
    for result in (swept, tuned):
        assert result.code == 1 and "Traceback" not in result.err, result.err[-3000:]
        (line,) = _said(result.err)
        assert f"{boards}: the disk is full" in line, line
    assert "not written: the ablation table" in _said(swept.err)[0]
    assert "not written: the table of" in _said(tuned.err)[0]
    assert _records(runs) == ["succeeded"] * 4  # 2 sweep runs, a trial, a tuned seed
    assert not _temps(boards) and not list(boards.glob("*.md"))
