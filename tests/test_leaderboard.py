"""Leaderboards are a pure function of their records, sorted by final-epoch mean Dice."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from harness.classes import CLASSES
from harness.errors import HarnessError
from harness.results.leaderboard import regenerate, resolve
from harness.results.records import Record, read_record, write_record

BENCH = {
    "id": "tiny-abc__phantom-1234",
    "dataset": {"name": "phantom", "fingerprint": "1234" * 16},
    "protocol": {"name": "tiny", "label": "tiny", "hash": "abc", "fields": {"epochs": 2}},
}


def _comp(name: str) -> dict:
    return {"name": name, "params": {}, "plugin": "p", "distribution": "harness", "version": "0"}


def _entry(loss: str) -> dict:
    comp = _comp
    return {
        "model": comp("unetpp"),
        "loss": {**comp(loss), "params": {"dice": 0.7} if loss == "combo" else {}},
        "optimizer": comp("adamw"),
        "scheduler": comp("flat"),
        "augmentation": comp("none"),
        "encoder": None,
    }


def _record(loss: str, seed: int, dice: float, status: str = "succeeded", bench=BENCH) -> Record:
    return Record(
        status=status,
        seed=seed,
        mean_dice=dice if status == "succeeded" else None,
        per_class_dice={c: dice for c in CLASSES} if status == "succeeded" else {},
        benchmark=bench,
        entry=_entry(loss),
        best={"epoch": 2, "mean_dice": dice},
        cost={
            "parameters": 1e6,
            "train_images_per_s": 10.0,
            "peak_memory_mb": 100,
            "wall_s": 60,
            "device": "cpu",
        },
        started_at=f"2026-01-0{seed + 1}",
    )


def _write(runs: Path, name: str, record: Record) -> Path:
    path = runs / name / "record.json"
    write_record(path, record)
    return path


def test_rows_aggregate_seeds_and_sort_by_mean(tmp_path: Path) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    _write(runs, "a0", _record("dice", 0, 0.80))
    _write(runs, "a1", _record("dice", 1, 0.84))
    _write(runs, "b0", _record("combo", 0, 0.90))
    _write(runs, "c0", _record("bce", 0, 0.99, status="failed"))
    other = {**BENCH, "id": "tiny-zzz__phantom-1234"}
    _write(runs, "d0", _record("bce", 0, 0.95, bench=other))
    text = regenerate(BENCH["id"], runs, boards).read_text()
    rows = [
        line for line in text.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")
    ]
    assert "combo:dice=0.7" in rows[0] and "0.9000" in rows[0]
    assert "| unetpp · dice · adamw · flat · none | 0.8200 | 0.0283 | 2 |" in rows[1]
    assert (
        "bce" not in text.split("## Per-class")[0].split("|---")[-1]
    )  # failed and foreign rows left out
    assert "(2|P∩G| + 1e-4)" in text and "hash `abc`" in text


def test_same_records_same_bytes(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for seed in range(3):
        _write(runs, f"s{seed}", _record("dice", seed, 0.7 + seed / 100))
    first = regenerate(BENCH["id"], runs, tmp_path / "b1").read_bytes()
    # Rewrite the records with other timestamps and in another order: same table.
    for seed in reversed(range(3)):
        r = _record("dice", seed, 0.7 + seed / 100)
        r.started_at = "2030-01-01"
        _write(runs, f"s{seed}", r)
    assert regenerate(BENCH["id"], runs, tmp_path / "b2").read_bytes() == first


def _finish(args: tuple[str, int]) -> None:
    root, seed = args
    runs = Path(root) / "runs"
    _write(runs, f"p{seed}", _record("dice", seed, 0.5 + seed / 10))
    regenerate(BENCH["id"], runs, Path(root) / "boards")


def test_concurrent_finishers_lose_no_row(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_finish, [(str(tmp_path), s) for s in range(4)])
    text = (tmp_path / "boards" / f"{BENCH['id']}.md").read_text()
    assert "| 4 | unetpp" not in text  # one entry, one row...
    assert (
        "| 1 | unetpp · dice · adamw · flat · none | 0.6500 | 0.1291 | 4 |" in text
    )  # ...of 4 seeds


def test_records_are_valid_json_and_round_trip(tmp_path: Path) -> None:
    path = _write(tmp_path, "r", _record("dice", 0, 0.5))
    data = json.loads(path.read_text())
    assert {"status", "seed", "mean_dice", "per_class_dice"} <= set(data)
    assert read_record(path) == _record("dice", 0, 0.5)


def test_no_records_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no records"):
        regenerate("nope", tmp_path, tmp_path)
    with pytest.raises(HarnessError, match="no run records"):
        resolve(None, tmp_path)
    assert resolve("leaderboards/x__y.md", tmp_path) == ["x__y"]


def test_rows_within_noise_of_the_leader_are_marked(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for seed, (a, b, c) in enumerate(
        [(0.80, 0.70, 0.805), (0.82, 0.71, 0.800), (0.81, 0.72, 0.818)]
    ):
        _write(runs, f"a{seed}", _record("dice", seed, a))
        _write(runs, f"b{seed}", _record("bce", seed, b))
        _write(runs, f"c{seed}", _record("combo", seed, c))
    text = regenerate(BENCH["id"], runs, tmp_path / "boards").read_text()
    ranked = [line for line in text.splitlines() if line[:4] in ("| 1 ", "| 2 ", "| 3 ")]
    rows = {line.split("|")[2].split(" · ")[1]: line for line in ranked}
    assert "| leader |" in rows["dice"] or "| leader |" in rows["combo:dice=0.7"]
    assert "| below |" in rows["bce"]
    assert "| ≈ |" in rows["dice"] or "| ≈ |" in rows["combo:dice=0.7"]
    assert "paired t-test" in text


def test_single_seed_rows_use_the_image_bootstrap(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    good, bad = _record("dice", 0, 0.8), _record("bce", 0, 0.6)
    good.val_images = bad.val_images = [f"img{i}.png" for i in range(6)]
    good.per_image_dice = [[0.8 + 0.01 * i] * 29 for i in range(6)]
    bad.per_image_dice = [[0.6 + 0.01 * i] * 29 for i in range(6)]
    _write(runs, "g", good)
    _write(runs, "b", bad)
    text = regenerate(BENCH["id"], runs, tmp_path / "boards").read_text()
    bce_row = next(
        line for line in text.splitlines() if "· bce ·" in line and line.startswith("| 2")
    )
    assert "| below |" in bce_row and "ᵇ" in bce_row


def test_heatmap_is_written_linked_and_deterministic(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _write(runs, "a", _record("dice", 0, 0.8))
    _write(runs, "b", _record("bce", 0, 0.6))
    board = regenerate(BENCH["id"], runs, tmp_path / "b1")
    picture = board.with_name(f"{board.stem}.heatmap.png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"]({picture.name})" in board.read_text()
    again = regenerate(BENCH["id"], runs, tmp_path / "b2")
    assert again.with_name(picture.name).read_bytes() == picture.read_bytes()
