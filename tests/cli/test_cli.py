"""The command line end to end: a tiny run, listing, leaderboards, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.classes import CLASSES
from tests.helpers import assert_same_result


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One real `harness run` under the tiny protocol, shared by the tests that read its output."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("tiny")
    env_cache = tmp_path_factory.getbasetemp() / "cache"
    cmd = [
        sys.executable, "-m", "harness", "run", "--model", "unetpp", "--loss", "dice",
        "--protocol", "tiny", "--runs-dir", str(root / "runs"),
        "--leaderboards-dir", str(root / "boards"),
    ]  # fmt: skip
    import os

    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env={**os.environ, "HARNESS_CACHE_DIR": str(env_cache), "COLUMNS": "200"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {"root": root, "stdout": proc.stdout, "stderr": proc.stderr}


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


def test_leaderboard_regenerates_same_bytes(tiny_run: dict, cli) -> None:
    root = tiny_run["root"]
    runs, boards = root / "runs", root / "boards"
    result = cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", root / "again")
    assert result.code == 0, result.err
    (again,) = (root / "again").glob("*.md")
    (first,) = boards.glob("*.md")
    assert again.read_bytes() == first.read_bytes()
    assert "| 1 | unetpp" in again.read_text()


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


def test_list_shows_every_builtin_with_its_distribution(cli) -> None:
    result = cli("list")
    assert result.code == 0, result.err
    for name in ("unet", "unetpp", "fpn", "deeplabv3plus", "bce", "dice", "combo", "sgd", "adam",
                 "adamw", "flat", "cosine", "warmup-cosine", "none", "basic", "tiny",
                 "synthetic", "standard-512", "standard-1024"):  # fmt: skip
        assert f" {name} " in result.out, name
    assert "segmentation-harness 0.1.0" in result.out
    protocols = cli("list", "protocols")
    from harness.protocol import load

    assert load("tiny").hash in protocols.out


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


def test_unknown_option_is_exit_2(cli) -> None:
    assert cli("run", "--modle", "unetpp").code == 2


def test_python_dash_m_works() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "harness", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "run" in proc.stdout


def test_data_synth_then_evaluate_a_perfect_submission(cli, tmp_path: Path) -> None:
    from harness.data.annotations import rasterize, read_annotation
    from harness.data.layout import label_path, list_images
    from harness.metric.rle import encode
    from harness.metric.submission import write_submission

    data = tmp_path / "phantom"
    result = cli("data", "synth", data, "--ids", "5", "--size", "64")
    assert result.code == 0, result.err
    assert cli("data", "check", data).code == 0
    rows = []
    for image in list_images(data, "train"):
        masks = rasterize(read_annotation(label_path(image)))
        rows += [(image.name, c, encode(m)) for c, m in zip(CLASSES, masks, strict=True)]
    write_submission(tmp_path / "sub.csv", rows)
    out_json = tmp_path / "score.json"
    result = cli(
        "evaluate", "--data", data, "--submission", tmp_path / "sub.csv", "--json", out_json
    )
    assert result.code == 0, result.err
    score = json.loads(out_json.read_text())
    assert score["mean_dice"] == 1.0 and set(score["per_class_dice"]) == set(CLASSES)
    # An existing dataset is never overwritten.
    again = cli("data", "synth", data, "--ids", "5", "--size", "64")
    assert again.code == 2 and "already exists" in again.err


def test_data_check_reports_every_problem(cli, tmp_path: Path) -> None:
    data = tmp_path / "phantom"
    assert cli("data", "synth", data, "--ids", "5", "--size", "64").code == 0
    jsons = sorted((data / "train" / "outputs_json").rglob("*.json"))
    jsons[0].write_text("{not json")
    jsons[1].unlink()
    result = cli("data", "check", data)
    assert result.code == 2
    assert jsons[0].name in result.err and jsons[1].stem in result.err
    assert len([line for line in result.err.splitlines() if line.startswith("harness:")]) == 2


def test_data_stats_writes_json_and_plots(cli, tmp_path: Path) -> None:
    data = tmp_path / "phantom"
    assert cli("data", "synth", data, "--ids", "5", "--size", "64").code == 0
    result = cli("data", "stats", data, "--out", tmp_path / "stats")
    assert result.code == 0, result.err
    names = sorted(p.name for p in (tmp_path / "stats").iterdir())
    assert names == sorted(
        ["stats.json", "class_areas.png", "overlap_matrix.png", "wrist_angle.png", "contrast.png"]
    )
    assert "Small bones" in result.out


def test_check_plugin_passes_a_builtin_and_fails_a_broken_model(cli, tmp_path: Path) -> None:
    good = cli("check-plugin", "combo:dice=0.5,bce=0.5")
    assert good.code == 0, good.err
    assert "conforms" in good.out
    broken = tmp_path / "broken_model.py"
    broken.write_text(
        "import torch\n"
        "from harness import hookimpl\n\n\n"
        "def flat(*, num_classes, in_channels, encoder=None):\n"
        "    return torch.nn.Conv2d(in_channels, 3, 1)  # wrong number of classes\n\n\n"
        "@hookimpl\n"
        "def harness_models():\n"
        "    return {'flat-wrong': flat}\n"
    )
    bad = cli("check-plugin", "flat-wrong", "--plugin", broken)
    assert bad.code == 1
    assert "FAIL" in bad.out


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
