"""The words of a verdict, the same in every table, page and terminal; the notes that name the
rule; the bootstrap standard error a one-seed row keeps as its ±."""

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
    RULE,
    bootstrap_se,
    difference_verdict,
    noise_lines,
    verdict,
)
from harness.results.tables import twin_path
from tests.helpers import BENCH, make_record, put_record


def test_bootstrap_se_matches_the_textbook_value() -> None:
    x = np.random.default_rng(2).normal(0.8, 0.1, 50)
    se = bootstrap_se(x)
    assert abs(se - x.std(ddof=1) / np.sqrt(x.size)) < 0.004
    assert bootstrap_se([0.5]) is None


def test_a_verdict_is_worded_once() -> None:
    assert verdict(True, None) == LEADER == "leader" and verdict(True, None, BEST) == BEST == "best"
    assert verdict(False, False) == "≈"
    assert verdict(False, True) == "below"
    assert verdict(False, None) == "?"  # not tested: no claim
    assert [difference_verdict(w) for w in (False, True, None)] == [
        "within noise",
        "real",
        "noise unknown",
    ]


def test_the_notes_name_the_rule_the_resolution_and_what_is_left_out() -> None:
    summary = {"basis": "images", "rows": [0, 1], "df": 62.4, "mdd": 0.0597}
    text = "\n".join(noise_lines(summary, "vs #1", [], cross_validated=False))
    assert RULE in text and "62 df" in text and "resolves is 0.0597" in text
    assert "One seed a row" not in text and "Not modelled" not in text
    alone = "\n".join(noise_lines({**summary, "images_only": True}, "vs #1", ["#3"], False))
    assert "One seed a row" in alone and "understate" in alone
    assert "Not modelled**: 1 row without per-image Dice" in alone and "(#3)" in alone
    seeds = "\n".join(noise_lines({**summary, "basis": "seeds"}, "vs best", [], False))
    assert "mean Dice alone" in seeds and "No per-image Dice" in seeds and "`vs best`" in seeds
    none = noise_lines({"basis": None, "problem": "a table of 1 row(s): nothing to compare"},
                       "vs #1", [], False)  # fmt: skip
    assert "no noise model could be fitted (a table of 1 row(s)" in none[0]
    assert "not known" in none[1]


def _no_seed_in_common(root: Path) -> Path:
    """Three seeds of dice that score alike, bce on seed 7 alone, no per-image Dice: no noise
    to measure, so no model and no test against the leader."""
    runs = root / "runs"
    for seed in range(3):
        put_record(runs, f"{BENCH['id']}/dice/seed-{seed}", make_record("dice", seed, 0.8))
    put_record(runs, f"{BENCH['id']}/bce/seed-7", make_record("bce", 7, 0.7))
    return runs


def test_a_row_with_no_usable_comparison_reads_the_same_everywhere(cli, tmp_path: Path) -> None:
    runs, boards = _no_seed_in_common(tmp_path), tmp_path / "boards"
    unknown = verdict(False, None)
    board = regenerate(BENCH["id"], runs, boards)
    twin = json.loads(twin_path(board).read_text())
    assert [r["vs_leader"] for r in twin["rows"]] == [LEADER, unknown]
    assert f"| 1 | {unknown} |" in board.read_text(encoding="utf-8")
    assert [r.cells[6] for r in table_view(board, twin).rows] == [LEADER, unknown]
    assert twin["noise"]["basis"] is None and "do not vary" in twin["noise"]["problem"]

    found = list(iter_records(runs))
    made = [(r.entry.loss.name, r.entry.key, r) for r in rows((r for _, r in found), BENCH["id"])]
    data = ablation_data("loss", made, BENCH["id"], runs_of={id(r): "" for _, r in found})
    ablation = write_ablation_table(boards / f"{BENCH['id']}.ablation-loss.md", data, runs)
    assert [r["vs_best"] for r in data["rows"]] == [BEST, unknown]
    assert f"| bce | 0.7000 | — | 1 | {unknown} |" in ablation.read_text(encoding="utf-8")
    ablation_twin = json.loads(twin_path(ablation).read_text())
    assert [r.cells[4] for r in table_view(ablation, ablation_twin).rows] == [BEST, unknown]

    # Between two tables, rows without a noise model have no noise to compare by: its own words.
    result = compare(board, board)
    words = [d.data()["noise"] for d in result.deltas]
    assert words == [difference_verdict(None)] * 2
    assert [r.cells[5] for r in compare_view(result, board, board).rows] == words
    printed = cli("compare", board, board)
    assert printed.code == 0 and difference_verdict(None) in printed.out
