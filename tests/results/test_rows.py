"""A leaderboard's rows, aggregated from records: one per entry, best mean Dice first; a run's
device as the table names it (how sure a row is: tests/results/test_judging.py)."""

from __future__ import annotations

import pytest

from harness.results.rows import device_text, precisions, rows
from tests.helpers import BENCH, make_record, other_benchmark


def test_rows_group_an_entrys_seeds_and_leave_out_failed_and_foreign_runs() -> None:
    other = other_benchmark("fff")
    records = [
        make_record("dice", 1, 0.84),
        make_record("dice", 0, 0.80),
        make_record("bce", 0, 0.90),
        make_record("combo", 0, 0.99, status="failed"),
        make_record("combo", 1, 0.95, bench=other),
    ]
    made = rows(records, BENCH["id"])
    assert [r.entry.loss.name for r in made] == ["bce", "dice"]
    dice = made[1]
    assert [r.seed for r in dice.records] == [0, 1] and dice.mean == pytest.approx(0.82)
    assert dice.by_seed() == {0: 0.80, 1: 0.84} and dice.std == pytest.approx(0.0283, abs=1e-4)
    assert made[0].std is None  # one seed: no spread


def test_the_device_names_the_cpu_and_a_precision_other_than_fp32() -> None:
    record = make_record("dice", 0, 0.8)
    assert device_text(record) == "cpu"
    record.hardware = {"cpu": {"model": "AMD EPYC", "threads": 2}}
    record.cost["precision"] = "bf16"
    assert device_text(record) == "cpu · AMD EPYC · bf16"
    record.cost["precision"] = "fp32"
    assert device_text(record) == "cpu · AMD EPYC"
    other = make_record("bce", 0, 0.7)
    other.cost["precision"] = "fp16"
    assert precisions(rows([record, other], BENCH["id"])) == ["fp16", "fp32"]


def test_a_tuned_rows_chosen_values_name_a_components_own_as_tuning_chose_them() -> None:
    record = make_record("dice", 0, 0.8)
    assert rows([record], BENCH["id"])[0].chosen == {}  # not tuned, no values of its own
    record.tuning = {
        "chosen": {"trial": 2, "values": {"lr": 0.356, "optimizer.momentum": 0.977}},
    }
    tuned = rows([record], BENCH["id"])[0]
    assert tuned.chosen == {"lr": 0.356, "optimizer.momentum": 0.977}
