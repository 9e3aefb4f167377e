"""``harness tune`` (``harness.cli.tune``): the trials' table, each final seed's Dice and
record, the tuning picture and the entry's row; ``--dry-run`` says the budget, the study and
the estimate and writes nothing; ``--vary`` tunes each value with the same budget into a tuned
ablation table. (Tuning itself: tests/studies/test_tune.py.)"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.results.leaderboard import regenerate
from harness.studies import tune as tuning
from tests.helpers import BENCH, make_record, seeded_runs


def test_a_tune_prints_its_trials_its_seeds_and_its_row(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the command prints of an outcome (the tuning made up: nothing trains)."""
    board = regenerate(BENCH["id"], seeded_runs(tmp_path), tmp_path / "boards")
    record = make_record("dice", 0, 0.75)
    trial = SimpleNamespace(number=0, values={"lr": 0.01}, dice=0.7, device_hours=0.01)
    outcome = SimpleNamespace(
        tuning=SimpleNamespace(space=[("lr", None)], fold=1),
        trials=[trial],
        chosen=trial,
        folder=tmp_path / "study",
        picture=tmp_path / "study" / "tuning.png",
        rungs=(),  # a full schedule: no Epochs column, no gain over the default
        default=None,
        audit=None,
        final=SimpleNamespace(
            outcomes=[(tmp_path / "seed-0" / "record.json", record)],
            benchmark=SimpleNamespace(protocol=SimpleNamespace(fold=0)),
            table=board,
            entry=SimpleNamespace(label="unetpp · dice · adamw · flat · none"),
        ),
    )
    monkeypatch.setattr(tuning, "tune", lambda request, observer, **kw: outcome)
    result = cli(
        "tune", "--protocol", "tiny", "--trials", "1", "--seeds", "1",
        "--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err
    out = result.out
    assert "Tuning: 1 trials on fold 1" in out and "chosen" in out
    assert f"seed 0: mean Dice 0.7500 on fold 0; record {tmp_path / 'seed-0'}" in out
    assert f"tuning picture: {tmp_path / 'study' / 'tuning.png'}" in out
    assert f"Leaderboard {board}:" in out
    assert out.strip().splitlines()[-1].startswith("| 1 | unetpp · dice · adamw · flat · none |")


def test_a_dry_run_says_the_budget_the_study_and_the_estimate(cli, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = cli("tune", "--protocol", "tiny", "--dry-run", "--runs-dir", runs)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("tuning unetpp · dice · ") and ": 8 trials (qmc seed 0)" in lines[0]
    assert lines[1].startswith(f"study: {runs}") and lines[1].endswith(" (new)")
    assert lines[-1].startswith("estimate: ")
    assert not runs.exists()


def test_vary_writes_a_tuned_ablation_table(cli, tmp_path: Path) -> None:
    result = cli(
        "tune", "--vary", "optimizer=sgd,adam", "--model", "unet", "--loss", "dice",
        "--protocol", "tiny", "--trials", "1", "--device", "cpu",
        "--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err[-3000:]
    (table,) = (tmp_path / "boards").glob("*.ablation-optimizer-tuned.md")
    text = table.read_text()
    assert "# Ablation: Optimizer (tuned)" in text and "1 trials (qmc seed 0)" in text
    lines = [line for line in text.splitlines() if line.startswith(("| sgd ", "| adam "))]
    assert len(lines) == 2 and all("lr=" in line for line in lines)
    picture = table.with_suffix(".png")  # every value's trials on one picture, linked
    assert picture.stat().st_size > 0 and f"]({picture.name})" in text


def test_vary_with_dry_run_trains_nothing(cli, tmp_path: Path) -> None:
    """``--dry-run`` with ``--vary`` (it once tuned every value); --model as in sweep."""
    runs = tmp_path / "runs"
    result = cli(
        "tune", "--vary", "optimizer=sgd,adam", "--loss", "dice", "--protocol", "tiny",
        "--trials", "2", "--dry-run", "--runs-dir", runs,
        "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err[-3000:]
    assert result.out.count("tuning unetpp · dice · ") == 2 and "2 trials (qmc" in result.out
    assert "· sgd ·" in result.out and "· adam ·" in result.out
    assert not runs.exists() or not [p for p in runs.rglob("*") if p.is_file()]
