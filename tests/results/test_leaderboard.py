"""Leaderboards are a pure function of their records, sorted by final-epoch mean Dice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.results.leaderboard import regenerate, resolve
from harness.results.tables import twin_path
from tests.helpers import BENCH, make_record, other_benchmark, put_record


def test_rows_aggregate_seeds_and_sort_by_mean(tmp_path: Path) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    put_record(runs, "a0", make_record("dice", 0, 0.80))
    put_record(runs, "a1", make_record("dice", 1, 0.84))
    put_record(runs, "b0", make_record("combo", 0, 0.90))
    put_record(runs, "c0", make_record("bce", 0, 0.99, status="failed"))
    other = other_benchmark("fff")
    put_record(runs, "d0", make_record("bce", 0, 0.95, bench=other))
    text = regenerate(BENCH["id"], runs, boards).read_text()
    rows = [
        line for line in text.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")
    ]
    assert "combo:dice=0.7" in rows[0] and "0.9000" in rows[0]
    assert "| unetpp · dice · adamw · flat · none | 0.8200 | [" in rows[1] and "| 2 |" in rows[1]
    assert (
        "bce" not in text.split("## Per-class")[0].split("|---")[-1]
    )  # failed and foreign rows left out
    assert "(2|P∩G| + 1e-4)" in text and "hash `abc`" in text


def test_same_records_same_bytes(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for seed in range(3):
        put_record(runs, f"s{seed}", make_record("dice", seed, 0.7 + seed / 100))
    first = regenerate(BENCH["id"], runs, tmp_path / "b1").read_bytes()
    # Rewrite the records with other timestamps and in another order: same table.
    for seed in reversed(range(3)):
        r = make_record("dice", seed, 0.7 + seed / 100)
        r.started_at = "2030-01-01"
        put_record(runs, f"s{seed}", r)
    assert regenerate(BENCH["id"], runs, tmp_path / "b2").read_bytes() == first


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
        put_record(runs, f"a{seed}", make_record("dice", seed, a))
        put_record(runs, f"b{seed}", make_record("bce", seed, b))
        put_record(runs, f"c{seed}", make_record("combo", seed, c))
    text = regenerate(BENCH["id"], runs, tmp_path / "boards").read_text()
    ranked = [line for line in text.splitlines() if line[:4] in ("| 1 ", "| 2 ", "| 3 ")]
    rows = {line.split("|")[2].split(" · ")[1]: line for line in ranked}
    assert "| leader |" in rows["dice"] or "| leader |" in rows["combo:dice=0.7"]
    assert "| below |" in rows["bce"]
    assert "| ≈ |" in rows["dice"] or "| ≈ |" in rows["combo:dice=0.7"]
    assert "step-down max-t" in text


def test_single_seed_rows_are_judged_on_their_images(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    good, bad = make_record("dice", 0, 0.8), make_record("bce", 0, 0.6)
    good.val_images = bad.val_images = [f"img{i}.png" for i in range(6)]
    good.per_image_dice = [[0.8 + 0.01 * i] * 29 for i in range(6)]
    bad.per_image_dice = [[0.6 + 0.01 * i + 0.004 * (-1) ** i] * 29 for i in range(6)]
    good.mean_dice, bad.mean_dice = 0.825, 0.625  # what the images average to
    put_record(runs, "g", good)
    put_record(runs, "b", bad)
    table = regenerate(BENCH["id"], runs, tmp_path / "boards")
    text = table.read_text()
    bce_row = next(
        line for line in text.splitlines() if "· bce ·" in line and line.startswith("| 2")
    )
    assert "| below |" in bce_row and "**One seed a row**" in text
    twin = json.loads(twin_path(table).read_text())
    assert twin["noise"]["images_only"] and all(r["noise_is_se"] for r in twin["rows"])


def test_the_device_column_names_a_precision_other_than_fp32_and_the_header_a_mix(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    for seed, (loss, precision) in enumerate([("dice", "fp32"), ("combo", "fp32")]):
        record = make_record(loss, seed, 0.8 + seed / 100)
        record.cost["precision"] = precision
        put_record(runs, f"r{seed}", record)
    table = regenerate(BENCH["id"], runs, tmp_path / "same")
    text = table.read_text()
    assert "**Precision**" not in text and "precisions" not in json.loads(
        twin_path(table).read_text()
    )
    assert "| cpu |" in text and " · fp" not in text  # fp32: the device alone, as before

    half = make_record("bce", 5, 0.9)
    half.cost.update(device="cpu (2 threads)", precision="fp16")
    put_record(runs, "h", half)
    table = regenerate(BENCH["id"], runs, tmp_path / "mixed")
    text = table.read_text()
    assert "| cpu (2 threads) · fp16 |" in text
    (line,) = [line for line in text.splitlines() if line.startswith("- **Precision**")]
    assert "(fp16, fp32)" in line
    assert json.loads(twin_path(table).read_text())["precisions"] == ["fp16", "fp32"]
