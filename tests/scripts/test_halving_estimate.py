"""``scripts/halving_estimate.py``: the estimate docs/tuning.md shows is what the committed
records give, each table's halving cost between its seeds' and the full schedule's, and a
trial's seconds are read from its record as described."""

from __future__ import annotations

import copy
import importlib.util
import sys

import pytest

from harness.protocol import Tuning
from tests.helpers import BENCH, REPO, make_record


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "halving_estimate", REPO / "scripts" / "halving_estimate.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


estimate = _load_script()


@pytest.fixture(scope="module")
def study():
    return estimate.load()


def test_the_estimate_in_docs_is_the_one_the_records_make(study) -> None:
    text = estimate.DOC.read_text(encoding="utf-8")
    lines = estimate.table(*study)
    assert estimate.rewrite(text, lines) == text, (
        "docs/tuning.md's estimate differs from the records: run python scripts/halving_estimate.py"
    )
    edited = text.replace("| optimizer | 4 |", "| optimizer | 5 |", 1)
    assert edited != text and estimate.rewrite(edited, lines) == text
    assert estimate.main(["--check"]) == 0


def test_halving_costs_more_than_fixed_and_less_than_full(study) -> None:
    tables, costs = study
    assert sorted(tables) == sorted(estimate.AXES) and len(costs) == 10
    for keys in tables.values():
        seeds = sum(costs[k].seeds for k in keys)
        halved = sum(costs[k].halving for k in keys)
        full = sum(costs[k].full for k in keys)
        assert seeds < halved < full
        # The audited schedules, cheapest first, the chosen one last.
        ladder = [sum(costs[k].schedules[i] for k in keys) for i in range(3)]
        assert ladder == sorted(ladder) and ladder[-1] == halved
    # For the study as a whole only the cheapest is within the 1.3x target.
    keys = list({k for keys in tables.values() for k in keys})
    seeds = sum(costs[k].seeds for k in keys)
    ladder = [sum(costs[k].schedules[i] for k in keys) for i in range(3)]
    assert ladder[0] <= 1.3 * seeds < ladder[1]


def test_a_trials_seconds_come_from_its_record() -> None:
    bench = copy.deepcopy(BENCH)
    bench["protocol"]["fields"].update(epochs=80, folds=5, exclude_folds=[0])
    record = make_record("dice", 0, 0.5, bench=bench)
    record.val_images = [f"image{i}.png" for i in range(8)]  # 3 folds of 8 trained
    record.cost = {"wall_s": 330.0, "train_images_per_s": 6.0}
    outside, per_epoch = estimate.trial_seconds(record)
    assert per_epoch == pytest.approx(24 / 6) and outside == pytest.approx(330 - 80 * 4)
    budget = Tuning(trials=6, schedule="halving", eta=3, min_epochs=5)
    hours = estimate.halving_trial_hours([record], 80, budget)
    assert hours == pytest.approx((6 * (10 + 5 * 4) + 2 * (10 + 15 * 4)) / 3600)
    audit = estimate.halving_trial_hours([record], 80, budget, audit=True)
    assert audit == pytest.approx(6 * 330 / 3600)
