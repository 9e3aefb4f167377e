"""``harness.results.power``: seeds a row (or folds × seeds) that would resolve a difference at
the table's own noise, from its twin alone; what cannot be answered is one error of one line
(and, through ``harness power``, exit 2). (The command's own answers: tests/cli/test_power.py.)"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.results.judging import model_of
from harness.results.noise import minimum_detectable_difference, seeds_needed
from harness.results.power import power
from harness.results.tables import twin_path
from tests.helpers import REPO, make_record, put_record

BOARDS = REPO / "leaderboards"
MAIN = BOARDS / "synthetic-2267276f85__phantom-v2-ids20-size256-seed0-d52b2e9a.md"
CROSS_VALIDATED = BOARDS / "synthetic-46ab025203__phantom-v2-ids20-size256-seed0-d52b2e9a.md"
ABLATION = BOARDS / "synthetic-2267276f85__phantom-v2-ids20-size256-seed0-d52b2e9a.ablation-loss.md"


def test_the_answer_is_the_rules_on_the_twins_model() -> None:
    twin = json.loads(twin_path(MAIN).read_text(encoding="utf-8"))
    model = model_of(twin["noise"])
    plan = power(MAIN, 0.03)
    needed = seeds_needed(model, 0.03)
    assert plan.seeds == needed and 3 < needed < 64  # the README quotes it for this table
    assert plan.resolves == pytest.approx(minimum_detectable_difference(model))
    assert (plan.units, plan.folds) == (3, 1)
    assert plan.line() == (
        f"{MAIN}: {needed} seeds a row would resolve 0.0300 in mean Dice at this noise (80 % "
        "power, α = 0.05 after the correction); it has 3 seeds a row and resolves "
        f"{minimum_detectable_difference(model):.4f} now"
    )
    assert (
        f"--detect 0.03` says how many would\nresolve 0.03 at a table's noise, in a second: "
        f"{needed} a row" in (REPO / "README.md").read_text(encoding="utf-8")
    )
    assert power(twin_path(MAIN), 0.03) == replace(plan, table=twin_path(MAIN))


def test_a_difference_no_number_of_seeds_resolves_is_an_answer() -> None:
    plan = power(MAIN, 0.005)
    assert plan.seeds is None
    assert "not resolvable with up to 64 seeds" in plan.line()
    assert "more validation images" in plan.line()


def test_an_ablation_table_is_planned_from_its_own_noise() -> None:
    plan = power(ABLATION, 0.03)
    assert plan.seeds is not None and plan.resolves < power(MAIN, 0.03).resolves


def _twin(root: Path, records: list) -> Path:
    from harness.results.leaderboard import regenerate

    runs = root / "runs"
    for k, record in enumerate(records):
        put_record(runs, f"r{k}", record)
    board = regenerate(records[0].benchmark_id, runs, root / "boards")
    assert board is not None
    return board


def _bad_tables(root: Path) -> dict[str, tuple[Path, str]]:
    """Tables ``power`` cannot plan from, by case: the path and what its one line says."""
    one = _twin(root / "one", [make_record("dice", s, 0.8 + s / 100) for s in range(3)])
    levels = (("dice", 0.8), ("bce", 0.6))
    seeds = _twin(
        root / "seeds", [make_record(loss, s, d + s / 100) for loss, d in levels for s in range(3)]
    )
    old = root / "old.json"
    twin = json.loads(twin_path(MAIN).read_text(encoding="utf-8"))
    old.write_text(json.dumps({k: v for k, v in twin.items() if k != "noise"}), encoding="utf-8")
    damaged = root / "damaged.json"
    twin["noise"]["mean_squares"]["value"][0] = -1
    damaged.write_text(json.dumps(twin), encoding="utf-8")
    empty = root / "empty.json"
    twin["noise"]["mean_squares"]["value"] = [0.0] * 6
    empty.write_text(json.dumps(twin), encoding="utf-8")
    notes = root / "notes.md"
    notes.write_text("# notes\n", encoding="utf-8")
    return {
        "one row": (one, "a table of 1 row(s): nothing to compare"),
        "no per-image Dice": (seeds, "its records have no per-image Dice"),
        "one seed a fold": (CROSS_VALIDATED, "one seed a row (or a fold)"),
        "before noise models": (old, "a table made before noise models"),
        "a damaged model": (damaged, "noise.mean_squares.value[0]: less than 0"),
        "a model of no noise": (empty, "noise: the mean squares describe no noise"),
        "no table": (notes, "no table's JSON twin beside it (notes.json)"),
        "a folder": (root, "is a folder"),
    }


def test_what_cannot_be_planned_is_one_line_and_exit_2(cli, tmp_path: Path) -> None:
    for case, (table, says) in _bad_tables(tmp_path).items():
        with pytest.raises(HarnessError, match="."):
            power(table, 0.01)
        result = cli("power", table, "--detect", "0.01")
        line = result.err.strip()
        assert result.code == 2 and "\n" not in line and "Traceback" not in line, (case, result.err)
        assert line.startswith("harness: error: ") and says in line, (case, line)
