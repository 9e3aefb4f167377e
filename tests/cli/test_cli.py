"""The command line end to end (``harness.cli`` assembles the commands): a tiny run, its
table, record and row, the same seed the same result, ``--tta``, and one-line errors across
commands. Each command's own tests are in tests/cli/test_<command>.py; the tiny run
(``tiny_run``) is in this folder's conftest.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.classes import CLASSES
from tests.helpers import assert_same_result


def test_tiny_run_prints_benchmark_table_and_row(tiny_run: dict) -> None:
    lines = tiny_run["stderr"].lstrip().splitlines()
    while lines[0].startswith("Preparing the dataset: "):  # a fresh cache: said in lines
        lines.pop(0)
    assert lines[0].startswith("Benchmark tiny-")
    assert "protocol tiny, hash" in tiny_run["stderr"]
    for name in ("finger-1", "Pisiform", "Ulna"):
        assert name in tiny_run["stdout"]
    assert "| 1 | unetpp · dice · adamw · warmup-cosine · none |" in tiny_run["stdout"]


def test_tiny_run_says_its_progress_in_lines_when_stderr_is_a_pipe(tiny_run: dict) -> None:
    lines = tiny_run["stderr"].splitlines()
    assert "seed 0: training, 4 steps" in lines  # tiny: 2 epochs of 2 steps
    last = next(line for line in lines if line.startswith("seed 0: epoch 2/2, step 4/4, loss "))
    assert "val Dice " in last and " elapsed, " in last and last.endswith(" left")
    assert "━" not in tiny_run["stderr"] and "\x1b" not in tiny_run["stderr"]  # no bar


def test_tiny_run_leaves_a_record_and_a_leaderboard(tiny_run: dict) -> None:
    root = tiny_run["root"]
    (record_path,) = (root / "runs").rglob("record.json")
    record = json.loads(record_path.read_text())
    assert record["status"] == "succeeded" and record["seed"] == 0
    assert set(record["per_class_dice"]) == set(CLASSES)
    assert 0.0 <= record["mean_dice"] <= 1.0
    assert record["mean_dice"] == pytest.approx(
        sum(record["per_class_dice"].values()) / len(CLASSES)
    )
    assert record["entry"]["model"]["distribution"] == "segmentation-harness"
    assert record["benchmark"]["protocol"]["name"] == "tiny"
    assert record["cost"]["parameters"] > 0 and record["cost"]["train_images_per_s"] > 0
    (board,) = (root / "boards").glob("*.md")
    assert board.stem == record["benchmark"]["id"]
    for picture in ("curves.png", "per-class-dice.png", "prediction.png"):
        assert (record_path.parent / picture).read_bytes()[:4] == b"\x89PNG"


def test_tiny_run_keeps_predictions_that_score_as_its_record(tiny_run: dict) -> None:
    """``--keep-predictions``: the validation probabilities under every test-time augmentation,
    beside the record that names them; thresholded, the plain ones give the record's Dice."""
    import numpy as np
    import torch

    from harness.data.annotations import rasterize, read_annotation
    from harness.data.layout import label_path, list_images
    from harness.data.sources import phantom_named
    from harness.metric.dice import dice_scores
    from harness.results.predictions import Kept, cut

    (record_path,) = (tiny_run["root"] / "runs").rglob("record.json")
    record = json.loads(record_path.read_text())
    kept = Kept.open(record_path.parent, record["predictions"])
    assert record["predictions"]["tta"] == ["hflip", "multiscale", "none"]
    assert list(kept.names) == record["val_images"]
    data = phantom_named(record["benchmark"]["dataset"]["name"])
    paths = {p.name: p for p in list_images(data, "train")}
    for i, name in enumerate(kept.names):
        truth = torch.from_numpy(rasterize(read_annotation(label_path(paths[name]))))
        pred = torch.from_numpy(kept.load("none", i) > cut(0.5))
        assert np.array_equal(dice_scores(pred, truth).numpy(), record["per_image_dice"][i])


def test_same_seed_same_result_on_cpu(tiny_run: dict, cli, tmp_path: Path) -> None:
    result = cli(
        "run", "--model", "unetpp", "--loss", "dice", "--protocol", "tiny",
        "--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "boards",
        "--device", "cpu",
    )  # fmt: skip
    assert result.code == 0, result.err
    (mine,) = (tmp_path / "runs").rglob("record.json")
    (theirs,) = (tiny_run["root"] / "runs").rglob("record.json")
    assert_same_result(json.loads(mine.read_text()), json.loads(theirs.read_text()))


@pytest.mark.parametrize(
    "args, culprit",
    [
        (["run", "--model", "unetp", "--loss", "dice", "--protocol", "tiny"], "unetpp"),
        (["run", "--model", "unetpp", "--loss", "dcie", "--protocol", "tiny"], "did you mean"),
        (["run", "--model", "unetpp", "--loss", "dice", "--protocol", "nope"], "unknown protocol"),
        (
            [
                "run",
                "--model",
                "unetpp",
                "--loss",
                "dice",
                "--protocol",
                "tiny",
                "--set",
                "epoch=1",
            ],
            "epoch",
        ),
        (
            [
                "run",
                "--model",
                "unetpp",
                "--loss",
                "dice",
                "--protocol",
                "tiny",
                "--set",
                "epochs=-1",
            ],
            "epochs",
        ),
        (
            ["run", "--model", "unetpp", "--loss", "dice", "--protocol", "tiny", "--seeds", "x"],
            "--seeds",
        ),
        (["run", "--model", "unetpp", "--loss", "combo:dice", "--protocol", "tiny"], "--loss"),
        (
            [
                "run",
                "--model",
                "unetpp",
                "--loss",
                "dice",
                "--protocol",
                "tiny",
                "--plugin",
                "missing_mod_xyz",
            ],
            "missing_mod_xyz",
        ),
        (
            [
                "run",
                "--model",
                "unetpp",
                "--loss",
                "dice",
                "--protocol",
                "tiny",
                "--data",
                "/nonexistent/data",
            ],
            "/nonexistent/data",
        ),
        (
            [
                "run",
                "--model",
                "unetpp",
                "--loss",
                "dice:nope=1",
                "--protocol",
                "tiny",
                "--set",
                "epochs=1",
            ],
            "nope",
        ),
        (["list", "gadgets"], "gadgets"),
        (["leaderboard", "--runs-dir", "/nonexistent/runs"], "runs"),
        (
            ["evaluate", "--data", "/nonexistent/data", "--submission", "/nonexistent/s.csv"],
            "nonexistent",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, args: list[str], culprit: str, tmp_path: Path) -> None:
    args = [*args, *(["--runs-dir", str(tmp_path)] if args[0] == "run" else [])]
    result = cli(*args)
    assert result.code == 2, (result.out, result.err)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("harness: error:"), result.err
    assert culprit in lines[0]
    assert "Traceback" not in result.err
    assert not (tmp_path / "record.json").exists()


def test_python_dash_m_works() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "harness", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "run" in proc.stdout


def test_tta_flip_is_part_of_the_entry(cli, tmp_path: Path) -> None:
    result = cli(
        "run", "--model", "unet", "--loss", "dice", "--protocol", "tiny", "--set", "epochs=1",
        "--tta", "flip", "--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "b",
    )  # fmt: skip
    assert result.code == 0, result.err
    (record_path,) = (tmp_path / "runs").rglob("record.json")
    record = json.loads(record_path.read_text())
    assert record["entry"]["tta"] == "flip"
    (board,) = (tmp_path / "b").glob("*.md")
    assert "· tta flip |" in board.read_text()
    assert cli("run", "--model", "unet", "--loss", "dice", "--tta", "spin").code == 2


def test_small_bone_column_comes_from_the_dataset_statistics(tiny_run: dict) -> None:
    (record_path,) = (tiny_run["root"] / "runs").rglob("record.json")
    small = json.loads(record_path.read_text())["benchmark"]["small_bones"]
    assert len(small) == 7 and set(small) <= set(CLASSES)
    (board,) = (tiny_run["root"] / "boards").glob("*.md")
    text = board.read_text()
    assert f"the mean Dice over {', '.join(small)}" in text
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    assert row.split("|")[9].strip() != "—"  # Small-bone Dice
