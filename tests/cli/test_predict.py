"""``harness predict`` (``harness.cli.predict``): a finished run's submission CSV, which
``evaluate`` scores as the run's own validation did; a missing run is one line; several runs'
validation Dice in a table beside their ensemble's. (Predicting itself:
tests/inference/test_predict.py.)"""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from harness.cli.predict import _ensemble_table


def test_predict_val_scores_like_the_run(tiny_run: dict, cli, tmp_path: Path) -> None:
    from harness.data.sources import synthetic_dataset

    data = synthetic_dataset(5, 64, 0)
    (record_path,) = (tiny_run["root"] / "runs").rglob("record.json")
    sub = tmp_path / "val.csv"
    result = cli("predict", record_path.parent, "--data", data, "--split", "val", "--out", sub)
    assert result.code == 0, result.err
    scored = tmp_path / "score.json"
    assert cli("evaluate", "--data", data, "--submission", sub, "--json", scored).code == 0
    record = json.loads(record_path.read_text())
    assert json.loads(scored.read_text())["mean_dice"] == pytest.approx(
        record["mean_dice"], abs=1e-9
    )
    missing = cli("predict", tmp_path / "no-such-run", "--data", data, "--out", sub)
    assert missing.code == 2 and "no-such-run" in missing.err


def test_the_ensemble_table_has_each_members_dice_against_the_ensembles() -> None:
    prediction = SimpleNamespace(
        runs=["runs/a/seed-0", "runs/a/seed-1"], member_dice=[0.8, 0.75], ensemble_dice=0.78
    )
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(_ensemble_table(prediction))
    text = console.export_text()
    assert "Validation mean Dice: ensemble of 2 runs" in text
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if "│" in line]
    assert rows == [
        ["runs/a/seed-0", "0.8000", "+0.0200"],
        ["runs/a/seed-1", "0.7500", "-0.0300"],
        ["ensemble", "0.7800", ""],
    ]
