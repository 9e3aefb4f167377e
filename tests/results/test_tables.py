"""A table never loses rows silently: a table there whose runs the runs folder lacks is kept,
and this folder's table goes under ``<runs>/leaderboards/`` with one line; every table has
its JSON twin, written from the same data as its markdown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.classes import CLASSES
from harness.results.leaderboard import regenerate
from harness.results.records import Record, iter_records, write_record
from harness.results.tables import twin_path
from tests.helpers import REPO

ROOT = REPO
PUBLISHED = ROOT / "leaderboards"
BENCH = {
    "id": "tiny-abc__phantom-1234",
    "dataset": {"name": "phantom", "fingerprint": "1234" * 16},
    "protocol": {"name": "tiny", "label": "tiny", "hash": "abc", "fields": {"epochs": 2}},
}


def _record(loss: str, seed: int, dice: float) -> Record:
    comp = {"params": {}, "plugin": "p", "distribution": "harness", "version": "0"}
    names = {"model": "unetpp", "loss": loss, "optimizer": "adamw", "scheduler": "flat"}
    entry: dict = {k: {**comp, "name": v} for k, v in names.items()}
    entry |= {"augmentation": {**comp, "name": "none"}, "encoder": None}
    return Record(
        status="succeeded",
        seed=seed,
        mean_dice=dice,
        per_class_dice={c: dice for c in CLASSES},
        benchmark=BENCH,
        entry=entry,
        cost={"parameters": 1e6, "wall_s": 60, "device": "cpu"},
    )


def _runs(root: Path, losses: dict[str, list[float]]) -> Path:
    for loss, dice in losses.items():
        for seed, value in enumerate(dice):
            path = root / BENCH["id"] / loss / f"seed-{seed}" / "record.json"
            write_record(path, _record(loss, seed, value))
    return root


def test_the_twin_holds_the_markdowns_rows_and_their_records(tmp_path: Path) -> None:
    runs = _runs(tmp_path / "runs", {"dice": [0.8, 0.82], "bce": [0.5]})
    table = regenerate(BENCH["id"], runs, tmp_path / "boards")
    assert table is not None
    twin = json.loads(twin_path(table).read_text())
    assert twin["format"] == "harness-table/1" and twin["kind"] == "leaderboard"
    assert [r["entry"] for r in twin["rows"]] == [
        "unetpp · dice · adamw · flat · none",
        "unetpp · bce · adamw · flat · none",
    ]
    first = twin["rows"][0]
    assert first["n"] == 2 and first["seeds"] == [0, 1] and abs(first["mean_dice"] - 0.81) < 1e-12
    assert first["runs"] == [f"{BENCH['id']}/dice/seed-{s}/record.json" for s in (0, 1)]
    assert f"| 1 | {first['entry']} | 0.8100 |" in table.read_text()
    assert twin["columns"][:6] == ["#", "Entry", "Mean Dice", "95 % CI", "Rank (95 %)", "n"]


def test_a_table_from_a_folder_missing_its_runs_is_kept_and_this_one_goes_beside_the_runs(
    tmp_path: Path,
) -> None:
    full = _runs(tmp_path / "full", {"dice": [0.8, 0.82, 0.81], "bce": [0.5, 0.4]})
    boards = tmp_path / "boards"
    published = regenerate(BENCH["id"], full, boards)
    assert published is not None
    before = {p.name: p.read_bytes() for p in boards.iterdir() if not p.name.endswith(".lock")}
    one = _runs(tmp_path / "runs", {"dice": [0.79]})  # a newcomer's first run: 1 of 5 runs
    said: list[str] = []
    written = regenerate(BENCH["id"], one, boards, say=said.append)
    after = {p.name: p.read_bytes() for p in boards.iterdir() if not p.name.endswith(".lock")}
    assert after == before  # the published table, twin and heatmap: byte for byte
    assert written == one / "leaderboards" / published.name
    assert "| 1 | unetpp · dice · adamw · flat · none | 0.7900 |" in written.read_text()
    assert twin_path(written).is_file()
    (line,) = said
    assert "\n" not in line and str(published) in line and str(written) in line
    assert "4 runs in it have no record under" in line
    # Again: the runs folder's own table is updated in place, the published one still kept.
    write_record(one / BENCH["id"] / "bce" / "seed-0" / "record.json", _record("bce", 0, 0.45))
    assert regenerate(BENCH["id"], one, boards, say=said.append) == written
    assert "· bce ·" in written.read_text()
    # Deleting the published table accepts the loss: it is written from this folder.
    for name in before:
        (boards / name).unlink()
    assert regenerate(BENCH["id"], one, boards) == published


def test_a_table_gains_rows_from_a_folder_that_holds_all_its_runs(tmp_path: Path) -> None:
    runs = _runs(tmp_path / "runs", {"dice": [0.8, 0.82]})
    boards = tmp_path / "boards"
    regenerate(BENCH["id"], runs, boards)
    bigger = tmp_path / "bigger"
    shutil.copytree(runs, bigger)
    _runs(bigger, {"bce": [0.4]})
    said: list[str] = []
    assert regenerate(BENCH["id"], bigger, boards, say=said.append) == boards / (
        BENCH["id"] + ".md"
    )
    assert not said and "· bce ·" in (boards / (BENCH["id"] + ".md")).read_text()


def test_a_damaged_record_named_in_the_header_is_no_silent_loss(tmp_path: Path) -> None:
    runs = _runs(tmp_path / "runs", {"dice": [0.8, 0.82]})
    boards = tmp_path / "boards"
    regenerate(BENCH["id"], runs, boards)
    (runs / BENCH["id"] / "dice" / "seed-1" / "record.json").write_text("{ not json")
    said: list[str] = []
    table = regenerate(BENCH["id"], runs, boards, say=said.append)
    assert table == boards / (BENCH["id"] + ".md") and not said
    assert "**Excluded**" in table.read_text()


def test_the_published_table_survives_a_first_run(cli, tmp_path: Path) -> None:
    """A fresh clone's `make run`: its table from ./runs holds 1 of the published records."""
    (main,) = [
        p for p in PUBLISHED.glob("synthetic-2267276f85__*.md") if ".ablation-" not in p.name
    ]
    boards = tmp_path / "leaderboards"
    shutil.copytree(PUBLISHED, boards, ignore=shutil.ignore_patterns("records"))
    before = {p.name: p.read_bytes() for p in boards.iterdir()}
    record = next(
        p
        for p, r in iter_records(PUBLISHED / "records")
        if r.benchmark_id == main.stem and r.seed == 0 and not r.entry.get("tuned")
    )
    runs = tmp_path / "runs"
    target = runs / record.relative_to(PUBLISHED / "records")
    target.parent.mkdir(parents=True)
    shutil.copy(record, target)
    result = cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards)
    assert result.code == 0, result.err
    assert {p.name: p.read_bytes() for p in boards.iterdir() if p.suffix != ".lock"} == before
    kept = [line for line in result.err.splitlines() if "is left as it is" in line]
    published = json.loads(main.with_suffix(".json").read_text(encoding="utf-8"))
    others = sum(len(row["runs"]) for row in published["rows"]) - 1
    assert len(kept) == 1 and f"{others} runs in it have no record" in kept[0], result.err
    own = runs / "leaderboards" / main.name
    assert f"wrote {own}" in result.out.replace("\n", "")
    assert "- **Runs**: 1 succeeded" in own.read_text()
