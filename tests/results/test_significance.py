"""The noise marks: paired t-test over seeds, paired bootstrap over images for one seed; and the
words of a verdict, the same in every table, page and terminal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.results.ablation import ablation_data, write_ablation_table
from harness.results.compare import compare
from harness.results.leaderboard import regenerate
from harness.results.pages import compare_view, table_view
from harness.results.records import iter_records
from harness.results.rows import rows
from harness.results.significance import (
    BEST,
    LEADER,
    Comparison,
    bootstrap_se,
    compare_images,
    compare_seeds,
    difference_verdict,
    verdict,
)
from harness.results.tables import twin_path
from tests.helpers import BENCH, make_record, put_record


def test_clear_difference_over_seeds_is_significant() -> None:
    result = compare_seeds([0.80, 0.82, 0.81], [0.70, 0.71, 0.72])
    assert result.method == "t-test" and not result.within_noise and result.p_value < 0.05


def test_overlapping_seeds_are_within_noise() -> None:
    result = compare_seeds([0.800, 0.820, 0.810], [0.810, 0.800, 0.815])
    assert result.within_noise and result.p_value > 0.5


def test_constant_difference() -> None:
    assert not compare_seeds([0.8, 0.9], [0.7, 0.8]).within_noise
    assert compare_seeds([0.8, 0.9], [0.8, 0.9]).within_noise


def test_bootstrap_over_images() -> None:
    rng = np.random.default_rng(1)
    a = rng.random(12)
    shifted = compare_images(a, a - 0.1 + rng.normal(0, 0.01, 12))
    assert not shifted.within_noise and shifted.interval[0] > 0.05
    noisy = compare_images(a, a + rng.normal(0, 0.05, 12))
    assert noisy.within_noise
    # Deterministic: same input, same interval.
    assert (
        compare_images(a, a + 0.01 * np.arange(12)).interval
        == compare_images(a, a + 0.01 * np.arange(12)).interval
    )


def test_bootstrap_se_matches_the_textbook_value() -> None:
    x = np.random.default_rng(2).normal(0.8, 0.1, 50)
    se = bootstrap_se(x)
    assert abs(se - x.std(ddof=1) / np.sqrt(x.size)) < 0.004
    assert bootstrap_se([0.5]) is None


def test_a_verdict_is_worded_once() -> None:
    assert verdict(None) == LEADER == "leader" and verdict(None, BEST) == BEST == "best"
    assert verdict(Comparison("t-test", within_noise=True, p_value=0.4)) == "≈"
    assert verdict(Comparison("bootstrap", within_noise=False, interval=(0.1, 0.2))) == "below"
    assert verdict(Comparison("n/a", within_noise=True)) == "?"  # no test: no claim
    assert [difference_verdict(w) for w in (True, False, None)] == [
        "within noise",
        "real",
        "noise unknown",
    ]


def _no_seed_in_common(root: Path) -> Path:
    """Three seeds of dice; bce on seed 7 alone, without per-image scores: no test against it."""
    runs = root / "runs"
    for seed in range(3):
        put_record(runs, f"{BENCH['id']}/dice/seed-{seed}", make_record("dice", seed, 0.8))
    put_record(runs, f"{BENCH['id']}/bce/seed-7", make_record("bce", 7, 0.7))
    return runs


def test_a_row_with_no_usable_comparison_reads_the_same_everywhere(cli, tmp_path: Path) -> None:
    runs, boards = _no_seed_in_common(tmp_path), tmp_path / "boards"
    unknown = verdict(Comparison("n/a", within_noise=True))
    board = regenerate(BENCH["id"], runs, boards)
    twin = json.loads(twin_path(board).read_text())
    assert [r["vs_leader"] for r in twin["rows"]] == [LEADER, unknown]
    assert f"| 1 | {unknown} |" in board.read_text(encoding="utf-8")
    assert [r.cells[5] for r in table_view(board, twin).rows] == [LEADER, unknown]

    found = list(iter_records(runs))
    made = [(r.entry.loss.name, r.entry.key, r) for r in rows((r for _, r in found), BENCH["id"])]
    data = ablation_data("loss", made, BENCH["id"], runs_of={id(r): "" for _, r in found})
    ablation = write_ablation_table(boards / f"{BENCH['id']}.ablation-loss.md", data, runs)
    assert [r["vs_best"] for r in data["rows"]] == [BEST, unknown]
    assert f"| bce | 0.7000 | — | 1 | {unknown} |" in ablation.read_text(encoding="utf-8")
    ablation_twin = json.loads(twin_path(ablation).read_text())
    assert [r.cells[4] for r in table_view(ablation, ablation_twin).rows] == [BEST, unknown]

    # Between two tables, a row without a ± has no noise to compare by: its own words.
    result = compare(board, board)
    words = [d.data()["noise"] for d in result.deltas]
    assert words == [difference_verdict(True), difference_verdict(None)]
    assert [r.cells[4] for r in compare_view(result, board, board).rows] == words
    printed = cli("compare", board, board)
    assert printed.code == 0 and difference_verdict(None) in printed.out
