"""Ablation tables (``harness.results.ablation``): one axis varied, a row per value in the order
given (a value without a succeeded run keeps its place, with n = 0), each judged against the
best by the leaderboard's rule on a model of this table's rows alone; named beside the main
table, and kept like a leaderboard when a folder lacks its runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.results.ablation import ablation_data, ablation_file, write_ablation_table
from harness.results.markdown import render
from harness.results.records import iter_records
from harness.results.rows import rows
from harness.results.tables import twin_path
from tests.helpers import BENCH, make_record, put_record


def _runs(root: Path, losses: dict[str, list[float]]) -> Path:
    """``root`` holding a run of each loss's entry per Dice given (seeds 0, 1, ...)."""
    for loss, dice in losses.items():
        for seed, value in enumerate(dice):
            put_record(root, f"{BENCH['id']}/{loss}/seed-{seed}", make_record(loss, seed, value))
    return root


def test_an_ablation_table_is_named_beside_the_main_table() -> None:
    main = Path("boards") / f"{BENCH['id']}.md"
    assert ablation_file(main, "loss") == Path("boards") / f"{BENCH['id']}.ablation-loss.md"
    tuned = ablation_file(main, "loss", tuned=True)
    assert tuned.name == f"{BENCH['id']}.ablation-loss-tuned.md"


def test_a_value_without_a_run_keeps_its_place_and_the_model_names_table_rows(
    tmp_path: Path,
) -> None:
    runs = _runs(tmp_path, {"dice": [0.8, 0.82], "bce": [0.5, 0.4]})
    found = list(iter_records(runs))
    by_loss = {row.entry.loss.name: row for row in rows((r for _, r in found), BENCH["id"])}
    runs_of = {id(r): p.relative_to(runs).as_posix() for p, r in found}
    table = [
        ("focal", None, None),
        *((v, by_loss[v].entry.key, by_loss[v]) for v in ("bce", "dice")),
    ]
    data = ablation_data("loss", table, BENCH["id"], runs_of=runs_of, budget="fixed")
    assert (data["kind"], data["axis"], data["budget"]) == ("ablation", "loss", "fixed")
    assert data["rows"][0] == {"value": "focal", "key": None, "n": 0, "runs": []}
    bce, dice = data["rows"][1:]
    assert [bce["value"], dice["value"]] == ["bce", "dice"]
    assert (bce["vs_best"], dice["vs_best"]) == ("below", "best")
    assert dice["n"] == 2 and dice["seeds"] == [0, 1] and dice["mean_dice"] == pytest.approx(0.81)
    assert dice["runs"] == [f"{BENCH['id']}/dice/seed-{s}/record.json" for s in (0, 1)]
    # the noise model's rows are this table's rows: focal, first, is not among them
    assert data["noise"]["rows"] == [1, 2] and data["noise"]["reference"] == 2


def test_an_ablation_table_is_kept_like_a_leaderboard(tmp_path: Path) -> None:
    runs = _runs(tmp_path / "runs", {"dice": [0.8, 0.82], "bce": [0.5, 0.4]})
    found = list(iter_records(runs))
    by_key = {row.entry.key: row for row in rows((r for _, r in found), BENCH["id"])}
    runs_of = {id(r): p.relative_to(runs).as_posix() for p, r in found}
    table = [(row.entry.loss.name, key, row) for key, row in by_key.items()]
    data = ablation_data("loss", table, BENCH["id"], runs_of=runs_of)
    path = tmp_path / "boards" / "x.ablation-loss.md"
    assert write_ablation_table(path, data, runs) == path
    assert "| dice | 0.8100 | [0.6549, 0.9651] | 2 | best |" in path.read_text()
    assert render(json.loads(twin_path(path).read_text())) == path.read_text()
    fewer = ablation_data("loss", table[:1], BENCH["id"], runs_of=runs_of)
    said: list[str] = []
    other = tmp_path / "other"
    assert write_ablation_table(path, fewer, other, said.append) == other / "leaderboards" / (
        path.name
    )
    assert len(said) == 1 and "2 runs in it have no record" in said[0]
