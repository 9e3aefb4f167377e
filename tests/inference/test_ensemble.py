"""``harness predict RUN0 RUN1``: an ensemble of two ``tiny`` seeds on the competition's real
layout at 2048 px; ``--split val`` prints each member's Dice and the ensemble's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.metric.evaluate import evaluate_submission
from harness.metric.submission import read_submission

SIZE = 2048


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The real-layout dataset (as tests/data/test_real_layout.py builds it) and two tiny seeds."""
    import sys

    from harness.cli import main
    from harness.data.phantom import synthesize

    data = synthesize(tmp_path_factory.mktemp("ens") / "hands", ids=5, size=SIZE, test_ids=1)
    root = tmp_path_factory.mktemp("ens-runs")
    argv = sys.argv
    sys.argv = [
        "harness", "run", "--model", "unet", "--loss", "dice", "--protocol", "tiny",
        "--set", "epochs=1", "--seeds", "2", "--data", str(data), "--runs-dir", str(root / "runs"),
        "--leaderboards-dir", str(root / "boards"), "--device", "cpu",
    ]  # fmt: skip
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    finally:
        sys.argv = argv
    records = sorted((root / "runs").rglob("record.json"))
    assert len(records) == 2
    return data, [r.parent for r in records]


def test_val_ensemble_prints_each_members_dice_and_its_own(
    runs: tuple[Path, list[Path]], cli, tmp_path: Path
) -> None:
    data, (seed0, seed1) = runs
    sub = tmp_path / "val.csv"
    result = cli("predict", seed0, seed1, "--data", data, "--split", "val", "--out", sub)
    assert result.code == 0, result.err[-2000:]
    shown = {}
    for line in result.out.splitlines():
        found = re.search(r"(seed-\d|ensemble)\s.*?(\d\.\d{4})", line)
        if found:
            shown[found.group(1)] = float(found.group(2))
    assert set(shown) == {"seed-0", "seed-1", "ensemble"}, result.out
    # Each member's Dice is the one its run recorded (validation scores the same way) ...
    for run in (seed0, seed1):
        recorded = json.loads((run / "record.json").read_text())["mean_dice"]
        assert shown[run.name] == pytest.approx(recorded, abs=6e-5)
    # ... and the ensemble's is what its submission scores.
    assert shown["ensemble"] == pytest.approx(evaluate_submission(data, sub).mean_dice, abs=6e-5)
    assert f"wrote {sub}" in result.out.replace("\n", "")


def test_test_split_ensemble_writes_a_submission(
    runs: tuple[Path, list[Path]], cli, tmp_path: Path
) -> None:
    data, (seed0, seed1) = runs
    sub = tmp_path / "test.csv"
    result = cli("predict", seed0, seed1, "--data", data, "--tta", "flip", "--out", sub)
    assert result.code == 0, result.err[-2000:]
    assert "Mean Dice" not in result.out and result.out.startswith("wrote ")
    rows = read_submission(sub)
    assert len(rows) == 2 and all(len(masks) == 29 for masks in rows.values())


def test_a_run_of_another_benchmark_is_named(
    runs: tuple[Path, list[Path]], cli, tmp_path: Path
) -> None:
    import shutil

    data, (seed0, seed1) = runs
    other = Path(shutil.copytree(seed1, tmp_path / "other" / "seed-1"))
    record = json.loads((other / "record.json").read_text())
    record["benchmark"]["id"] = "synthetic-0000000000__elsewhere"
    (other / "record.json").write_text(json.dumps(record))
    result = cli(
        "predict", seed0, other, "--data", data, "--split", "val", "--out", tmp_path / "x.csv"
    )
    assert result.code == 2 and str(other) in result.err.replace("\n", "")
    assert "Traceback" not in result.err
