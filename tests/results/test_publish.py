"""Publishing: every table (a leaderboard, an ablation, the refresh of all) is written through
``harness.results.publish.publish``, under its lock: its twin, markdown, pictures, page and
the folder's index; runs finishing at once lose no row."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from harness.results import publish as publishing
from harness.results.ablation import ablation_data, write_ablation_table
from harness.results.leaderboard import regenerate
from harness.results.publish import publish
from harness.results.records import iter_records
from harness.results.refresh import regenerate_all
from harness.results.rows import rows
from harness.results.tables import twin_path
from tests.helpers import BENCH, make_record, put_record


def _runs(root: Path) -> Path:
    runs = root / "runs"
    for loss, dice in (("dice", [0.8, 0.82]), ("bce", [0.5, 0.52])):
        for seed, value in enumerate(dice):
            put_record(runs, f"{BENCH['id']}/{loss}/seed-{seed}", make_record(loss, seed, value))
    return runs


def _ablation(runs: Path, boards: Path) -> Path | None:
    found = list(iter_records(runs))
    table = [
        (row.entry.loss.name, row.entry.key, row)
        for row in rows((r for _, r in found), BENCH["id"])
    ]
    runs_of = {id(r): p.relative_to(runs).as_posix() for p, r in found}
    data = ablation_data("loss", table, BENCH["id"], runs_of=runs_of)
    return write_ablation_table(boards / f"{BENCH['id']}.ablation-loss.md", data, runs)


def test_every_table_is_published_through_one_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, boards = _runs(tmp_path), tmp_path / "boards"
    written: list[str] = []
    write = publishing._write

    def heard(table: Path, data: dict, runs_dir: Path, say=None) -> None:
        written.append(f"{table.name} {data['kind']}")
        write(table, data, runs_dir, say)

    monkeypatch.setattr(publishing, "_write", heard)
    regenerate(BENCH["id"], runs, boards)
    _ablation(runs, boards)
    assert written == [f"{BENCH['id']}.md leaderboard", f"{BENCH['id']}.ablation-loss.md ablation"]
    written.clear()
    regenerate_all(None, runs, boards)
    assert written == [f"{BENCH['id']}.md leaderboard", f"{BENCH['id']}.ablation-loss.md ablation"]


def test_a_published_table_has_every_view_beside_its_twin(tmp_path: Path) -> None:
    runs, boards = _runs(tmp_path), tmp_path / "boards"
    board = regenerate(BENCH["id"], runs, boards)
    ablation = _ablation(runs, boards)
    assert board is not None and ablation is not None
    for table in (board, ablation):
        assert twin_path(table).is_file() and table.with_suffix(".html").is_file()
    assert board.with_name(f"{board.stem}.heatmap.png").is_file()
    assert not ablation.with_name(f"{ablation.stem}.heatmap.png").exists()
    index = (boards / "index.html").read_text(encoding="utf-8")
    assert board.with_suffix(".html").name in index and ablation.with_suffix(".html").name in index


def test_the_data_is_made_under_the_lock(tmp_path: Path) -> None:
    table = tmp_path / "boards" / "t.md"
    data = json.loads(
        twin_path(regenerate(BENCH["id"], _runs(tmp_path), tmp_path / "b0")).read_text()
    )

    def made() -> dict:
        with pytest.raises(TimeoutError):  # held while the records are read
            publishing.lock(table).acquire(timeout=0)
        return data

    assert publish(table, made, tmp_path / "runs") == table
    assert json.loads(twin_path(table).read_text()) == data


def _finish(args: tuple[str, int]) -> None:
    root, seed = args
    runs = Path(root) / "runs"
    put_record(runs, f"p{seed}", make_record("dice", seed, 0.5 + seed / 10))
    regenerate(BENCH["id"], runs, Path(root) / "boards")


def test_concurrent_finishers_lose_no_row(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_finish, [(str(tmp_path), s) for s in range(4)])
    text = (tmp_path / "boards" / f"{BENCH['id']}.md").read_text()
    assert "| 4 | unetpp" not in text  # one entry, one row...
    assert (
        "| 1 | unetpp · dice · adamw · flat · none | 0.6500 | — | — | 4 |" in text
    )  # ...of 4 seeds


def test_heatmap_is_written_linked_and_deterministic(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    put_record(runs, "a", make_record("dice", 0, 0.8))
    put_record(runs, "b", make_record("bce", 0, 0.6))
    board = regenerate(BENCH["id"], runs, tmp_path / "b1")
    picture = board.with_name(f"{board.stem}.heatmap.png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"]({picture.name})" in board.read_text()
    again = regenerate(BENCH["id"], runs, tmp_path / "b2")
    assert again.with_name(picture.name).read_bytes() == picture.read_bytes()
