"""Every committed table ships with its records: ``harness leaderboard --runs-dir
leaderboards/records`` regenerates, into an empty folder, each committed table (ablation tables
from the designs kept beside the records), its JSON twin, its web page, the folder's index.html
(main tables) its heatmap and (tuned ablation tables) the picture of their trials byte for
byte, and every row of a committed ablation table is a
row those records make. A committed selection (``<benchmark>.select.md``) comes back the same
way from the records and the predictions they keep: ``harness select BENCHMARK --runs-dir
leaderboards/records``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.components.entry import Entry
from harness.results.legacy import run_counts
from harness.results.records import iter_records, scan_records
from harness.results.rows import rows
from harness.results.tables import read_twin

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ROOT / "leaderboards"
RECORDS = BOARDS / "records"


def _main_tables() -> list[Path]:
    return sorted(p for p in BOARDS.glob("*.md") if ".ablation-" not in p.name and p not in _SELECT)


#: The committed selections (``harness select``), made from the records' kept predictions.
_SELECT = sorted(BOARDS.glob("*.select.md"))


def test_every_committed_table_has_its_records() -> None:
    tables = _main_tables()
    assert tables, "no committed tables"
    found, unusable = scan_records(RECORDS)
    assert not unusable, unusable
    ids = {r.benchmark_id for _, r in found}
    for table in tables:
        assert table.stem in ids, f"{table.name}: no records under {RECORDS}"
    for path, _ in found:  # record.json files in the runs/ layout, and ablation designs
        assert path.name == "record.json" and len(path.relative_to(RECORDS).parts) == 4
    kept = {p.parent / r.predictions["file"] for p, r in found if r.predictions}
    others = {p for p in RECORDS.rglob("*") if p.is_file() and p.name != "record.json"} - kept
    # Designs: today's tables' (ablations/), and those of the tuned tables they replaced.
    folders = {("ablations",), ("ablations", "full-schedule")}
    assert all(
        p.suffix == ".json" and p.relative_to(RECORDS).parts[1:-1] in folders for p in others
    ), others


def test_the_records_regenerate_every_committed_table_byte_for_byte(cli, tmp_path: Path) -> None:
    # Into an empty folder: the ablation tables come back from their designs beside the records.
    result = cli("leaderboard", "--runs-dir", RECORDS, "--leaderboards-dir", tmp_path, "--strict")
    assert result.code == 0, result.err
    for table in _SELECT:  # the selections, from the records' kept predictions
        bench = table.name.removesuffix(".select.md")
        result = cli("select", bench, "--runs-dir", RECORDS, "--leaderboards-dir", tmp_path)
        assert result.code == 0, result.err
    made = sorted(p.name for p in tmp_path.glob("*.md"))
    assert made == sorted(p.name for p in BOARDS.glob("*.md"))  # no table without records
    for table in sorted(BOARDS.glob("*.md")):
        assert (tmp_path / table.name).read_text() == table.read_text(), table.name
        twin = table.with_suffix(".json")
        assert (tmp_path / twin.name).read_text() == twin.read_text(), twin.name
        page = table.with_suffix(".html")
        assert (tmp_path / page.name).read_text() == page.read_text(), page.name
    assert (tmp_path / "index.html").read_text() == (BOARDS / "index.html").read_text()
    # Every picture: the main tables' heatmaps and the tuned ablations' trials (drawn from the
    # tuned records' trials, as ``harness tune --vary`` draws them).
    pictures = sorted(BOARDS.glob("*.png"))
    assert {p.name for p in pictures} >= {f"{t.stem}.heatmap.png" for t in _main_tables()}
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [p.name for p in pictures]
    for picture in pictures:
        assert (tmp_path / picture.name).read_bytes() == picture.read_bytes(), picture.name


def test_every_committed_table_has_its_json_twin() -> None:
    for table in sorted(BOARDS.glob("*.md")):
        twin = read_twin(table)
        assert twin is not None, f"{table.name}: no JSON twin"
        if table not in _SELECT:  # a selection's rows are configurations, not entries' runs
            assert len(twin["rows"]) == len(run_counts(table.read_text())), table.name


_ROW = re.compile(
    r"^\| (?P<value>[^|]+?) \| (?P<dice>[0-9.]+) \| (?P<interval>[^|]+) \| (?P<n>\d+) \|"
)


@pytest.mark.parametrize("table", sorted(BOARDS.glob("*.ablation-*.md")), ids=lambda p: p.name)
def test_every_ablation_row_is_a_row_of_the_records(table: Path) -> None:
    benchmark = table.name.split(".ablation-")[0]
    axis = table.name.split(".ablation-")[1].removesuffix(".md")
    tuned = axis.endswith("-tuned")  # a tuned table's rows are the tuned entries' rows
    axis = axis.removesuffix("-tuned")
    field = {"aug": "augmentation"}.get(axis, axis)
    made = rows((r for _, r in iter_records(RECORDS)), benchmark)
    lines = [m for line in table.read_text().splitlines() if (m := _ROW.match(line))]
    assert lines, table.name
    for m in lines:
        candidates = [
            r for r in made if _value(r.entry, field) == m["value"] and bool(r.entry.tuned) == tuned
        ]
        shown = [(f"{r.mean:.4f}", str(len(r.records))) for r in candidates]
        assert (m["dice"], m["n"]) in shown, (table.name, m["value"], shown)
        assert m["interval"].startswith("[") or m["interval"] == "—", m["interval"]


def _value(entry: Entry, field: str) -> str:
    """The value an ablation row shows: the component's name (``sgd``, also for a tuned
    ``sgd:momentum=0.977``), or the encoder."""
    if field == "encoder":
        return entry.encoder or ""
    component = getattr(entry, field)
    return str(getattr(component, "name", component))
