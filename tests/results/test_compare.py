"""`harness compare`: rows aligned by entry, deltas, noise marks, --fail-below."""

from __future__ import annotations

from pathlib import Path

from harness.results.compare import compare
from harness.results.leaderboard import regenerate
from tests.helpers import BENCH, make_record, put_record


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
    assert abs(by_entry["bce"].dice + 0.10) < 1e-9 and by_entry["bce"].within_noise is False
    assert by_entry["dice"].within_noise is True
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
