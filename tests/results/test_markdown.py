"""The markdown view of a table's twin: notes, cells as the columns declare them, what follows;
the page's notes are the same lines, and a finished run's printed row is the markdown's."""

from __future__ import annotations

import json
from pathlib import Path

from harness.results.leaderboard import regenerate
from harness.results.markdown import EMPTY, notes, render, row_text
from harness.results.page import markdown_html
from harness.results.pages import table_view
from harness.results.records import Record
from harness.results.tables import twin_path
from tests.helpers import BENCH, make_record, put_record


def test_the_markdown_is_the_twin_rendered(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for seed, dice in enumerate([0.80, 0.84]):
        put_record(runs, f"d{seed}", make_record("dice", seed, dice))
    table = regenerate(BENCH["id"], runs, tmp_path / "boards")
    twin = json.loads(twin_path(table).read_text())
    picture = f"{table.stem}.heatmap.png"
    assert render(twin, picture) == table.read_text(encoding="utf-8")
    lines = table.read_text(encoding="utf-8").splitlines()
    assert lines[: len(notes(twin))] == notes(twin)  # the notes, then the table
    assert lines[len(notes(twin))].startswith("| # | Entry |")
    assert f"![Per-class Dice of every entry]({picture})" in lines


def test_the_page_shows_the_markdowns_notes(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    put_record(runs, "d0", make_record("dice", 0, 0.8))
    table = regenerate(BENCH["id"], runs, tmp_path / "boards")
    twin = json.loads(twin_path(table).read_text())
    view = table_view(table, twin)
    assert view.before.endswith(markdown_html(notes(twin)))
    assert "<strong>Noise</strong>" in view.before and view.title.startswith("Leaderboard: tiny")


def test_a_table_without_rows_says_so_in_a_row_of_its_width(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    put_record(runs, "f0", make_record("dice", 0, 0.8, status="failed"))
    text = regenerate(BENCH["id"], runs, tmp_path / "boards").read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| # |"))
    (empty,) = [line for line in text.splitlines() if EMPTY in line]
    assert empty.startswith(f"| — | {EMPTY} |") and empty.count("|") == header.count("|")
    assert "![" not in text  # no rows, no heatmap


def test_row_text_is_the_markdowns_header_and_row(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    single = make_record("bce", 0, 0.6)  # one seed with per-image scores
    single.val_images = [f"img{i}.png" for i in range(6)]
    single.per_image_dice = [[0.6 + 0.01 * i] * 29 for i in range(6)]
    put_record(runs, "b0", single)
    for seed, dice in enumerate([0.80, 0.84]):
        put_record(runs, f"d{seed}", make_record("dice", seed, dice))
    put_record(runs, "c0", make_record("combo", 0, 0.9))  # one seed, no per-image scores: no ±
    table = regenerate(BENCH["id"], runs, tmp_path / "boards")
    lines = table.read_text(encoding="utf-8").splitlines()
    header = next(line for line in lines if line.startswith("| # | Entry |"))
    labels = {
        "unetpp · bce · adamw · flat · none": "| 0.6000 | [",
        "unetpp · dice · adamw · flat · none": "| 2 | ≈ |",
        "unetpp · combo:dice=0.7 · adamw · flat · none": "| 1 | leader |",
    }
    expected = {"no such entry": f"{header}\n"}
    for label, shows in labels.items():
        row = next(line for line in lines if line.startswith("| ") and f"| {label} |" in line)
        assert shows in row
        expected[label] = f"{header}\n{row}"
    markdown = table.read_text(encoding="utf-8")
    table.write_text("# notes\n", encoding="utf-8")  # the twin is what is read
    assert {label: row_text(table, label) for label in expected} == expected
    table.write_text(markdown, encoding="utf-8")
    twin_path(table).unlink()  # a table from before twins: read from its markdown
    assert {label: row_text(table, label) for label in expected} == expected


def test_a_table_of_two_machines_says_so_and_names_both(tmp_path: Path) -> None:
    """Two records edited to name two CPUs: the header lists both; one machine says nothing."""
    runs = tmp_path / "runs"
    for seed, model in enumerate(("AMD EPYC 7B13", "Intel(R) Xeon(R) Platinum 8375C CPU")):
        record = make_record("dice", seed, 0.8 + seed / 100)
        record.hardware = {"cpu": {"model": model, "threads": 2}}
        put_record(runs, f"s{seed}", record)
    text = regenerate(BENCH["id"], runs, tmp_path / "boards").read_text()
    header = text.split("| # |")[0]
    assert "**Hardware**: these rows ran on more than one kind of machine" in header
    assert "  - AMD EPYC 7B13\n" in header and "  - Intel(R) Xeon(R) Platinum 8375C CPU\n" in header
    assert "cpu · AMD EPYC 7B13, cpu · Intel(R) Xeon(R) Platinum 8375C CPU |" in text
    one = tmp_path / "one"
    record = make_record("dice", 0, 0.8)
    record.hardware = {"cpu": {"model": "AMD EPYC 7B13", "threads": 2}}
    put_record(one, "s0", record)
    assert "**Hardware**" not in regenerate(BENCH["id"], one, tmp_path / "b1").read_text()


def test_the_inference_columns_show_what_records_measured(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    measured = make_record("dice", 0, 0.8)
    measured.cost.update(
        {"gflops": 5.4321, "inference_images_per_s": 41.26, "inference_warmup": 3,
         "inference_timed": 10}
    )  # fmt: skip
    put_record(runs, "a", measured)
    put_record(runs, "b", make_record("bce", 0, 0.5))  # from before the columns: —
    text = regenerate(BENCH["id"], runs, tmp_path / "boards").read_text()
    assert "| Params (M) | GFLOPs | Train img/s | Infer img/s | Peak mem (MB) |" in text
    dice = next(line for line in text.splitlines() if line.startswith("| 1 "))
    bce = next(line for line in text.splitlines() if line.startswith("| 2 "))
    # make_record's training figure is a whole run's (no timed window): marked ʷ
    assert "| 1.00 | 5.43 | 10.0ʷ | 41.3 | 100 |" in dice, dice
    assert "| 1.00 | — | 10.0ʷ | — | 100 |" in bce, bce
    assert "the median of 10 timed passes after 3 warm-up passes" in text


LOSSES = ("dice", "bce", "combo")


def _timed(loss: str, seed: int, dice: float, images_per_s: float, **window: object) -> Record:
    """A record whose run timed a window of its steps (on a quiet machine unless changed)."""
    record = make_record(loss, seed, dice)
    record.cost["train_window"] = {
        "images_per_s": images_per_s,
        "warmup": 5,
        "timed": 30,
        "load": [1.0, 1.0, 1.0],
        "cpus": 2,
        "threads": 1,
        "concurrent_runs": 1,
        "others_cpu": 0.1,
        "device_type": "cpu",
        **window,
    }
    return record


def test_a_contended_throughput_is_marked_and_explained(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    put_record(runs, "quiet", _timed("dice", 0, 0.8, 7.04))
    put_record(runs, "busy", _timed("bce", 0, 0.7, 2.0, concurrent_runs=2))  # --jobs 2 on a CPU
    put_record(runs, "older", make_record("combo", 0, 0.6))  # a whole run's figure only
    text = regenerate(BENCH["id"], runs, tmp_path / "boards").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "unetpp ·" in line]
    quiet, busy, older = (next(r for r in rows if f"· {loss}" in r) for loss in LOSSES)
    assert "| 7.0 |" in quiet and "| 2.0ᶜ |" in busy and "| 10.0ʷ |" in older
    assert "30 timed steps after 5 warm-up steps" in text
    assert "ᶜ: taken under contention" in text and "ʷ: a whole run's images" in text
    assert "the page leaves them out of its ranges" in text


def test_a_contended_run_beside_a_quiet_one_is_left_out_of_its_rows_figure(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    put_record(runs, "s0", _timed("dice", 0, 0.8, 6.0))
    put_record(runs, "s1", _timed("dice", 1, 0.8, 1.0, load=[5.0, 5.0, 5.0]))
    text = regenerate(BENCH["id"], runs, tmp_path / "boards").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| 1 "))
    assert "| 6.0 |" in row  # the comparable seed's figure, unmarked
    assert "ᶜ:" not in text  # nothing shown is marked, so nothing to explain
