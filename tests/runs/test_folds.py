"""Cross-validation rows (``--folds``): an entry trained on each listed fold, one row over
folds in a table of its own, its noise model taking folds as blocks, its fold models an
ensemble."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data.phantom import synthesize
from harness.results.judging import judge
from harness.results.records import read_record
from harness.results.rows import Row, rows
from harness.results.tables import twin_path
from tests.helpers import BENCH, make_record


@pytest.fixture(scope="module")
def six_ids(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset of 6 ID folders (12 images): every fold of a 5-fold split has one or two."""
    return synthesize(tmp_path_factory.mktemp("six") / "D", ids=6, size=64)


def test_folds_all_gives_one_cross_validated_row_of_five(
    cli, six_ids: Path, tmp_path: Path
) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    result = cli(
        "run", "--model", "unet", "--loss", "dice", "--protocol", "tiny", "--data", six_ids,
        "--folds", "all", "--set", "epochs=1", "--device", "cpu",
        "--runs-dir", runs, "--leaderboards-dir", boards,
    )  # fmt: skip
    assert result.code == 0, result.err[-3000:]
    records = [read_record(p) for p in sorted(runs.rglob("record.json"))]
    assert [(r.status, r.fold, r.seed) for r in records] == [
        ("succeeded", fold, 0) for fold in range(5)
    ]
    assert len({json.dumps(r.val_images) for r in records}) == 5  # each its own fold
    for fold in range(5):  # its progress names the fold (stderr is no terminal here: lines)
        assert f"\nfold {fold} seed 0: training, " in result.err, result.err[-2000:]
    (table,) = [p for p in boards.glob("*.md")]
    text = table.read_text()
    ranked = [line for line in text.splitlines() if line.startswith("| 1 ")]
    assert len(ranked) == 1 and ranked[0].split("|")[6].strip() == "5"  # n = 5 folds × 1 seed
    assert "cross-validated" in text and "folds 0, 1, 2, 3, 4 of the protocol's 5" in text
    assert "cv_folds=0,1,2,3,4" in table.name or "cv_folds" in text
    twin = json.loads(twin_path(table).read_text())
    assert twin["rows"][0]["folds"] == [0, 1, 2, 3, 4]
    # A fold-0 table is another benchmark: a plain run never lands in this table.
    plain = cli(
        "run", "--model", "unet", "--loss", "dice", "--protocol", "tiny", "--data", six_ids,
        "--set", "epochs=1", "--device", "cpu", "--runs-dir", runs, "--leaderboards-dir", boards,
    )  # fmt: skip
    assert plain.code == 0, plain.err[-2000:]
    assert len(list(boards.glob("*.md"))) == 2 and table.read_text() == text

    # The entry's folder predicts as the ensemble of its five fold models.
    entry = next(runs.rglob("fold-0-seed-0")).parent
    out = tmp_path / "sub.csv"
    predicted = cli("predict", entry, "--data", six_ids, "--out", out, "--device", "cpu")
    assert predicted.code == 0, predicted.err[-2000:]
    assert out.read_text().startswith("image_name,class,rle")
    val = cli("predict", entry, "--data", six_ids, "--out", out, "--split", "val")
    assert val.code == 2 and "different folds" in val.err


def _cv(loss: str, fold: int, seed: int, dice: float):
    record = make_record(loss, seed, dice)
    record.fold = fold
    return record


def test_a_cross_validated_row_is_over_folds_and_its_test_takes_folds_as_blocks() -> None:
    records = [
        _cv("dice", fold, seed, 0.80 + fold / 100 + seed / 1000)
        for fold in range(3)
        for seed in range(2)
    ]
    (row,) = rows(records, BENCH["id"])
    assert row.cross_validated and len(row.records) == 6  # n = folds × seeds
    assert row.by_seed() == pytest.approx({0: 0.8005, 1: 0.8105, 2: 0.8205})
    assert row.mean == pytest.approx(0.8105) and row.std == pytest.approx(0.01)
    other = Row(row.entry, tuple(_cv("dice", f, 0, d) for f, d in enumerate((0.7, 0.715, 0.72))))
    noise = judge([row, other])
    assert noise.model is not None and noise.model.layout.folds == 3
    assert noise.judged[0].leader and noise.judged[1].below


@pytest.mark.parametrize(
    "args, culprit",
    [
        (["--folds", "7"], "fold 7"),
        (["--folds", "1,1"], "--folds '1,1'"),
        (["--folds", "x"], "--folds 'x'"),
        (["--folds", "all", "--set", "fold=2"], "--set fold"),
    ],
)
def test_bad_folds_are_one_line_before_any_data_work(
    cli, tmp_path: Path, args: list[str], culprit: str
) -> None:
    result = cli(
        "run", "--model", "unet", "--loss", "dice", "--protocol", "tiny", *args,
        "--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    lines = [line for line in result.err.splitlines() if line.startswith("harness:")]
    assert result.code == 2 and len(lines) == 1 and culprit in lines[0], result.err
    assert "Traceback" not in result.err and not (tmp_path / "runs").exists()


def test_a_split_that_leaves_a_fold_empty_is_one_line(cli, tmp_path: Path) -> None:
    data = tmp_path / "D"
    for i in range(3):
        (data / "train" / "DCM" / f"ID{i:03d}").mkdir(parents=True)
    result = cli(
        "run", "--model", "unet", "--loss", "dice", "--protocol", "tiny", "--data", data,
        "--folds", "all", "--runs-dir", tmp_path / "runs",
    )  # fmt: skip
    assert result.code == 2 and "3 ID folders" in result.err and "leaves a fold empty" in result.err
