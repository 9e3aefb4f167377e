"""`harness compare`: rows aligned by entry, deltas, noise marks, --fail-below."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.results.ablation import ablation_data, write_ablation_table
from harness.results.compare import Comparison, compare
from harness.results.leaderboard import regenerate
from harness.results.records import iter_records
from harness.results.rows import rows
from harness.results.tables import twin_path, twin_text
from tests.helpers import BENCH, REPO, make_record, put_record


def _table(root: Path, values: dict[str, list[float]]) -> Path:
    runs = root / "runs"
    for loss, dice in values.items():
        for seed, d in enumerate(dice):
            put_record(runs, f"{loss}{seed}", make_record(loss, seed, d))
    return regenerate(BENCH["id"], runs, root / "boards")


def test_deltas_and_noise(tmp_path: Path) -> None:
    a = _table(tmp_path / "a", {"dice": [0.80, 0.82, 0.81], "bce": [0.70, 0.71, 0.72]})
    b = _table(
        tmp_path / "b", {"dice": [0.81, 0.80, 0.815], "bce": [0.60, 0.61, 0.62], "combo": [0.9]}
    )
    result = compare(a, b)
    by_entry = {d.entry.split(" · ")[1]: d for d in result.deltas}
    assert abs(by_entry["bce"].dice + 0.10) < 1e-9 and by_entry["bce"].real is True
    assert by_entry["dice"].real is False
    assert result.only_b and "combo" in result.only_b[0] and not result.only_a
    assert [d.entry for d in result.drops_below(0.05)] == [by_entry["bce"].entry]


def test_cli_fail_below_exits_1(cli, tmp_path: Path) -> None:
    a = _table(tmp_path / "a", {"dice": [0.80, 0.82, 0.81]})
    b = _table(tmp_path / "b", {"dice": [0.70, 0.71, 0.72]})
    assert cli("compare", a, b).code == 0
    failed = cli("compare", a, b, "--fail-below", "0.05")
    assert failed.code == 1 and "dropped by 0.1000" in failed.err
    assert cli("compare", a, b, "--fail-below", "0.2").code == 0


def test_not_a_leaderboard_is_exit_2(cli, tmp_path: Path) -> None:
    other = tmp_path / "notes.md"
    other.write_text("# notes\n")
    result = cli("compare", other, other)
    assert result.code == 2 and "notes.md: no leaderboard table" in result.err


# Tables read from their JSON twins; markdown only for a table without one.

#: Chosen so the markdown's four digits hold every mean exactly: the twin's full precision and
#: the markdown's rounding give the same numbers. No record has per-image Dice, so each table's
#: model rests on the runs' mean Dice; lovasz and tversky are in one table only.
A_DICE = {
    "dice": [0.80, 0.82, 0.81],
    "bce": [0.70, 0.71, 0.72],
    "focal": [0.5],
    "lovasz": [0.4, 0.5],
}
B_DICE = {"dice": [0.81, 0.83, 0.82], "bce": [0.60, 0.61, 0.62], "focal": [0.6], "tversky": [0.9]}


def _verdicts(result: Comparison) -> list[tuple[str, str, bool | None]]:
    return [(d.entry, f"{d.dice:+.4f}", d.real) for d in result.deltas]


def _markdown_only(table: Path, folder: Path) -> Path:
    """A copy of ``table``'s markdown with no twin beside it (a table from before twins)."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / table.name
    shutil.copy(table, copy)
    return copy


def test_twins_give_verdicts_and_markdown_alone_gives_the_same_rows_with_noise_unknown(
    tmp_path: Path,
) -> None:
    a, b = _table(tmp_path / "a", A_DICE), _table(tmp_path / "b", B_DICE)
    from_twins = compare(twin_path(a), twin_path(b))
    old_a, old_b = _markdown_only(a, tmp_path / "old-a"), _markdown_only(b, tmp_path / "old-b")
    assert not twin_path(old_a).exists() and not twin_path(old_b).exists()
    from_markdown = compare(old_a, old_b)

    shown = [(entry, dice) for entry, dice, _ in _verdicts(from_twins)]
    assert shown == [(entry, dice) for entry, dice, _ in _verdicts(from_markdown)]
    assert [real for *_, real in _verdicts(from_markdown)] == [None] * 3  # no model: unknown
    assert from_markdown.unmodelled == (
        "A: no noise model (a table from before JSON twins)",
        "B: no noise model (a table from before JSON twins)",
    )
    assert from_twins.unmodelled == () and from_twins.tested == 3
    for twin, markdown in zip(from_twins.deltas, from_markdown.deltas, strict=True):
        assert twin.dice == pytest.approx(markdown.dice, abs=1e-12)
        for field in ("params_m", "images_per_s", "peak_mb"):
            assert twin.cost(field) == markdown.cost(field) == 0
    assert (from_twins.only_a, from_twins.only_b) == (from_markdown.only_a, from_markdown.only_b)
    verdicts = {entry.split(" · ")[1]: noise for entry, _, noise in _verdicts(from_twins)}
    assert verdicts == {"dice": False, "bce": True, "focal": False}  # focal: one seed, 0.1
    assert [e.split(" · ")[1] for e in from_twins.only_a] == ["lovasz"]
    assert [e.split(" · ")[1] for e in from_twins.only_b] == ["tversky"]


def test_markdown_with_a_twin_is_read_from_the_twin(tmp_path: Path) -> None:
    a, b = _table(tmp_path / "a", A_DICE), _table(tmp_path / "b", B_DICE)
    expected = compare(twin_path(a), twin_path(b))
    for table in (a, b):  # the rendered text is a view: the twin beside it is what is read
        table.write_text("# notes\n", encoding="utf-8")
    assert compare(a, b) == expected
    assert compare(a, twin_path(b)) == expected


def test_cli_compares_two_twins(cli, tmp_path: Path) -> None:
    a, b = _table(tmp_path / "a", A_DICE), _table(tmp_path / "b", B_DICE)
    twins = cli("compare", twin_path(a), twin_path(b))
    assert twins.code == 0, twins.err
    table = twins.out.split("Noise:")[0]
    assert "within noise" in table and "real" in table and "noise unknown" not in table
    assert "simultaneous max-|t| intervals over the 3 entries" in twins.out
    assert "only in A: unetpp · lovasz" in twins.out and "only in B: unetpp · tversky" in twins.out
    old_a, old_b = _markdown_only(a, tmp_path / "old-a"), _markdown_only(b, tmp_path / "old-b")
    markdown = cli("compare", old_a, old_b)
    assert markdown.code == 0, markdown.err
    assert "noise unknown" in markdown.out and "within noise" not in markdown.out.split("Noise:")[0]
    assert "A: no noise model (a table from before JSON twins)" in markdown.out
    failed = cli("compare", twin_path(a), twin_path(b), "--fail-below", "0.05")
    assert failed.code == 1 and "bce · adamw · flat · none: Dice dropped by 0.1000" in failed.err


def _bad_twins(folder: Path) -> dict[str, tuple[Path, str]]:
    """Twins ``compare`` refuses, by case: the file and what its one line says."""
    folder.mkdir(parents=True, exist_ok=True)
    ablation = next((REPO / "leaderboards").glob("*.ablation-loss.json"))
    later = {"format": "harness-table/9", "kind": "leaderboard", "rows": []}
    short = twin_text({"kind": "leaderboard", "rows": [{"entry": "e"}]})
    cases = {
        "ablation": ("x.ablation-loss.json", ablation.read_text(encoding="utf-8"), "an ablation"),
        "format": ("later.json", json.dumps(later), "'harness-table/9'"),
        "not json": ("broken.json", '{"format": ', "is not valid JSON"),
        "not a twin": ("other.json", '{"rows": []}', "not a table's JSON twin"),
        "row": ("short.json", short, "benchmark: missing"),
    }
    out = {}
    for case, (name, text, says) in cases.items():
        (folder / name).write_text(text, encoding="utf-8")
        out[case] = (folder / name, says)
    return out


def test_a_bad_twin_is_one_line_and_exit_2(cli, tmp_path: Path) -> None:
    good = twin_path(_table(tmp_path / "a", A_DICE))
    for case, (bad, says) in _bad_twins(tmp_path / "bad").items():
        result = cli("compare", good, bad)
        assert result.code == 2, case
        line = result.err.strip()
        assert "\n" not in line and "Traceback" not in line, (case, result.err)
        assert str(bad) in line and says in line, (case, line)


def test_a_markdown_tables_twin_is_what_is_compared(cli, tmp_path: Path) -> None:
    """A markdown is read from the twin beside it: an ablation's twin there makes it an
    ablation table, which a leaderboard is not compared with."""
    good = _table(tmp_path / "good", A_DICE)
    a = _table(tmp_path / "a", A_DICE)
    bad, _ = _bad_twins(tmp_path / "bad")["ablation"]
    shutil.copy(bad, twin_path(a))
    result = cli("compare", good, a)
    assert result.code == 2 and "\n" not in result.err.strip()
    assert f"{good} is a leaderboard and {a} is an ablation table of loss" in result.err


def _ablation(root: Path, axis: str, values: dict[str, list[float]]) -> Path:
    """An ablation table of ``axis`` (its values the losses of ``values``' records)."""
    runs = root / "runs"
    for loss, dice in values.items():
        for seed, d in enumerate(dice):
            put_record(runs, f"{loss}{seed}", make_record(loss, seed, d))
    found = list(iter_records(runs))
    made = [(r.entry.loss.name, r.entry.key, r) for r in rows((r for _, r in found), BENCH["id"])]
    data = ablation_data(axis, made, BENCH["id"], runs_of={id(r): "" for _, r in found})
    path = root / "boards" / f"{BENCH['id']}.ablation-{axis}.md"
    return write_ablation_table(path, data, runs)


def test_two_ablation_tables_of_one_axis_are_aligned_by_value(cli, tmp_path: Path) -> None:
    a = _ablation(tmp_path / "a", "loss", A_DICE)
    b = _ablation(tmp_path / "b", "loss", B_DICE)
    result = compare(a, b)
    assert result.axis == "loss"
    by_value = {d.entry: d for d in result.deltas}
    assert sorted(by_value) == ["bce", "dice", "focal"]
    assert abs(by_value["bce"].dice + 0.10) < 1e-9 and by_value["bce"].real is True
    assert by_value["dice"].real is False  # +0.01 on three seeds of 0.01 spread
    assert result.only_a == ["lovasz"] and result.only_b == ["tversky"]
    printed = cli("compare", a, b, "--fail-below", "0.05")
    assert printed.code == 1, printed.err
    assert "| Loss " in printed.out or "Loss" in printed.out.splitlines()[2]
    assert "bce: Dice dropped by 0.1000" in printed.err
    # Another axis, or a leaderboard, is one line.
    other = _ablation(tmp_path / "c", "optimizer", A_DICE)
    refused = cli("compare", a, other)
    assert refused.code == 2 and "\n" not in refused.err.strip()
    assert "an ablation table of loss and" in refused.err and "of optimizer" in refused.err
    board = _table(tmp_path / "d", A_DICE)
    assert cli("compare", board, a).code == 2
