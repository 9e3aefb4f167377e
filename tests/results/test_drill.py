"""A row's drill-down (``harness.results.drill``): its sections in reading order, made from the
twin's row (per-class Dice against the leader's, the seeds, the row's interval, rank band and
test, the cost, the runs with their pictures linked relative to the page); a path a record
names outside the runs folder left out, with a note; and, in the browser, a committed page's
drill-down shows its records' per-class Dice."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

import pytest

from harness.classes import CLASSES
from harness.results.drill import Sources, row_sections
from harness.results.leaderboard import regenerate
from harness.results.records import read_record
from tests.helpers import BENCH, REPO, outside, page_reach, pictured_runs

BOARDS = REPO / "leaderboards"
MAIN = next(
    p for p in sorted(BOARDS.glob("synthetic-2267276f85__*.md")) if ".ablation-" not in p.name
)
#: A twin's row, as a leaderboard's holds it (cost measured; two of its runs named in it lead
#: out of the runs folder).
ROW = {
    "entry": "unetpp · dice · adamw · flat · none",
    "mean_dice": 0.8,
    "std": 0.01,
    "per_class_dice": {c: 0.8 for c in CLASSES},
    "dice_by_seed": {"0": 0.79, "1": 0.81},
    "seeds": [0, 1],
    "vs_leader": "≈",
    "interval": [0.7, 0.9],
    "rank_band": [1, 2],
    "test": {"method": "step-down max-t", "p_value": 0.5, "beats_leader": 0.3, "gap": 0.01},
    "params_m": 6.83,
    "device": "cpu",
    "runs": [
        "b/dice/seed-0/record.json",
        "b/dice/seed-1/record.json",
        "../elsewhere/record.json",
        "/etc/record.json",
    ],
}


def test_a_rows_sections_follow_its_data_in_reading_order(tmp_path: Path) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    for seed in (0, 1):
        (runs / "b" / "dice" / f"seed-{seed}").mkdir(parents=True)
    (runs / "b" / "dice" / "seed-0" / "curves.png").write_bytes(b"png")
    leader = {"per_class_dice": {c: 0.9 for c in CLASSES}}
    sections = row_sections(ROW, leader, "#1 (unetpp · combo)", Sources(boards, runs))
    assert [s["title"] for s in sections] == [
        "Per-class Dice",
        "Seeds: mean 0.8000 ± 0.0100 over 2",
        "Against #1",
        "Cost",
        "Runs (records, inside the runs folder)",
        "Left out",
    ]
    bars = sections[0]
    assert bars["labels"] == list(CLASSES) and bars["reference"] == [0.9] * len(CLASSES)
    assert bars["rows"][0] == [CLASSES[0], "0.8000", "0.9000", "-0.1000"]
    assert sections[1]["rows"] == [["seed 0", "0.7900"], ["seed 1", "0.8100"]]
    assert sections[2]["items"] == [
        ["Verdict", "≈"],
        ["95 % CI of the true mean Dice", "[0.7000, 0.9000]"],
        ["Rank (95 %)", "1–2"],
        ["Rule", "step-down max-t"],
        ["Adjusted p", "0.5000"],
        ["P(beats #1)", "0.300"],
        ["Behind #1 by", "0.0100"],
    ]
    assert ["Params (M)", "6.83"] in sections[3]["items"]
    assert sections[4]["items"] == [  # a picture linked from the page's folder, where it exists
        {"path": ROW["runs"][0], "links": [["curves", "../runs/b/dice/seed-0/curves.png"]]},
        {"path": ROW["runs"][1], "links": []},
    ]
    note = sections[5]["text"]
    assert note.startswith("Not shown: 2 runs named in the records lead outside the runs folder")
    assert "../elsewhere/record.json; /etc/record.json" in note


def test_without_its_runs_folder_a_row_links_nothing_and_reads_no_record(tmp_path: Path) -> None:
    """The committed tables' pages: made from records without pictures, naming no folder."""
    row = {key: ROW[key] for key in ("entry", "mean_dice", "runs")}
    (section,) = row_sections(row, None, "", Sources(tmp_path))
    assert section["items"] == [{"path": p, "links": []} for p in ROW["runs"]]
    assert Sources(tmp_path).record(ROW["runs"][0]) is None


@pytest.mark.parametrize(
    "study",
    ["../../../outside/study", "/etc", "{root}/outside/study", "{bench}/tuning/linked-out"],
)
def test_a_path_out_of_the_runs_folder_is_left_out_with_a_note(
    browser: Any, tmp_path: Path, study: str
) -> None:
    runs, records = pictured_runs(tmp_path)
    (runs / BENCH["id"] / "tuning" / "linked-out").symlink_to(tmp_path / "outside" / "study")
    (runs / BENCH["id"] / "bce" / "seed-0" / "curves.png").unlink()
    (runs / BENCH["id"] / "bce" / "seed-0" / "curves.png").symlink_to(
        tmp_path / "outside" / "curves.png"
    )
    study = study.format(root=tmp_path, bench=BENCH["id"])
    for path in records[:2]:
        data = json.loads(path.read_text())
        data["tuning"]["study"] = study
        data["tuning"]["trials"][0]["record"] = "/etc"
        path.write_text(json.dumps(data))
    table = regenerate(BENCH["id"], runs, tmp_path / "boards")
    assert table is not None
    page = table.with_suffix(".html")
    details = json.loads(re.search(r'id="page-data">(.*?)</script>', page.read_text(), re.S)[1])
    sections = [s for row in details["details"] for s in row]
    notes = [s["text"] for s in sections if s["kind"] == "text"]
    assert any("tuning study's folder" in n and "outside the runs folder" in n for n in notes)
    assert any("tuning trial's run" in n for n in notes)
    assert not [s for s in sections if s["kind"] == "image" and "This entry" in s["title"]]
    bce_runs = [s for s in details["details"][1] if s["kind"] == "runs"][0]["items"]
    assert bce_runs[0]["links"] == []  # its curves.png is a link out of the runs folder
    requested, links = page_reach(browser, page)
    assert not outside(requested + links, tmp_path / "boards", runs), (requested, links)


# In a browser: a committed page, opened from file://.


def test_a_rows_drill_down_shows_its_records_per_class_dice(browser: Any) -> None:
    twin = json.loads(MAIN.with_suffix(".json").read_text())
    row = twin["rows"][13]
    records = [read_record(BOARDS / "records" / run) for run in row["runs"]]
    browser.get(MAIN.with_suffix(".html").resolve().as_uri())
    browser.find_element("css selector", "#board tbody tr[data-i='13']").click()
    cells = browser.find_elements("css selector", "#detail td[data-class]")
    assert [c.get_attribute("data-class") for c in cells] == list(CLASSES)
    for cell in cells:
        expected = statistics.fmean(
            r.per_class_dice[cell.get_attribute("data-class")] for r in records
        )
        assert abs(float(cell.text) - expected) <= 0.5e-4 + 1e-9, cell.get_attribute("data-class")
    assert browser.execute_script("return location.hash") == "#row=14"
    assert len(row["seeds"]) == 3 and "Seeds: mean" in browser.find_element("id", "detail").text
