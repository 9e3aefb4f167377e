"""``harness.results.designs``: an ablation's design kept beside its runs, so that
``harness leaderboard`` brings its table back from the records alone; a damaged design is one
line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from harness.results.ablation import ablation_data
from harness.results.designs import (
    FORMAT,
    design_of,
    design_path,
    read_designs,
    table_of,
    write_design,
)
from harness.results.records import scan_records
from harness.results.refresh import regenerate_all
from harness.results.rows import rows
from tests.helpers import BENCH, make_record, put_record


def _runs(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    for loss, dice in (("bce", 0.6), ("dice", 0.8)):
        for seed in range(2):
            put_record(runs, f"{BENCH['id']}/{loss}/seed-{seed}", make_record(loss, seed, dice))
    return runs


def _data(runs: Path, budget: str | None = None) -> dict:
    found, _ = scan_records(runs)
    by_loss = {row.entry.loss.name: row for row in rows((r for _, r in found), BENCH["id"])}
    table = [(v, by_loss[v].entry.key, by_loss[v]) for v in ("bce", "dice")]
    return ablation_data("loss", table, BENCH["id"], budget=budget)


def test_a_design_round_trips_and_rebuilds_the_same_table(tmp_path: Path) -> None:
    runs = _runs(tmp_path)
    data = _data(runs)
    path = write_design(runs, data)
    assert (
        path
        == design_path(runs, BENCH["id"], "loss")
        == runs / BENCH["id"] / "ablations" / ("loss.json")
    )
    (design,), bad = read_designs(runs, BENCH["id"])
    assert not bad and design == design_of(data) and design["format"] == FORMAT
    found, _ = scan_records(runs)
    rebuilt = table_of(design, found, runs)["rows"]
    assert [{**r, "runs": []} for r in rebuilt] == [{**r, "runs": []} for r in data["rows"]]
    assert rebuilt[0]["runs"] == [f"{BENCH['id']}/bce/seed-{s}/record.json" for s in (0, 1)]
    tuned = write_design(runs, _data(runs, budget="tuned 6 (1-abc)"))
    assert tuned.name == "loss-tuned.json"


def test_leaderboard_into_an_empty_folder_brings_back_the_ablation_table(tmp_path: Path) -> None:
    runs = _runs(tmp_path)
    write_design(runs, _data(runs))
    paths = regenerate_all(None, runs, tmp_path / "boards")
    names = sorted(p.name for p in paths if p is not None)
    assert names == [f"{BENCH['id']}.ablation-loss.md", f"{BENCH['id']}.md"]
    text = (tmp_path / "boards" / f"{BENCH['id']}.ablation-loss.md").read_text()
    assert "| bce |" in text and "| dice |" in text


def test_a_damaged_design_is_one_line_and_stops_nothing(tmp_path: Path) -> None:
    runs = _runs(tmp_path)
    folder = runs / BENCH["id"] / "ablations"
    folder.mkdir(parents=True)
    (folder / "loss.json").write_text("{not json")
    (folder / "model.json").write_text(json.dumps({"format": FORMAT, "axis": "model"}))
    other = {**design_of(_data(runs)), "benchmark_id": "tiny-other__x"}
    (folder / "optimizer.json").write_text(json.dumps(other))
    said: list[str] = []
    paths = regenerate_all(None, runs, tmp_path / "boards", say=said.append)
    assert [p.name for p in paths if p is not None] == [f"{BENCH['id']}.md"]
    assert len(said) == 3 and all(line.endswith("; left out") for line in said), said
    assert "model.json: benchmark_id: missing" in " ".join(said)
    assert "benchmark_id: not " in " ".join(said)
