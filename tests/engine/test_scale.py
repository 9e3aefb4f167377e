"""Scale: micro-batching, torch.compile and data-parallel runs (gloo).

The training loader's own tests are ``tests/engine/test_loader.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from harness import protocol as protocols
from harness.data.layout import list_images, split
from harness.data.sources import synthetic_dataset
from tests.helpers import assert_same_result

TINY = ["--protocol", "tiny", "--device", "cpu"]


def _record(runs: Path) -> dict[str, Any]:
    (path,) = runs.rglob("record.json")
    return json.loads(path.read_text())


def test_micro_batch_is_recorded_and_resumable(cli: Callable[..., Any], tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = cli(
        "run", "--model", "unet", "--loss", "bce", *TINY, "--micro-batch", "2",
        "--set", "epochs=1", "--runs-dir", runs, "--leaderboards-dir", tmp_path / "b",
    )  # fmt: skip
    assert result.code == 0, result.err
    record = _record(runs)
    assert record["status"] == "succeeded"
    assert record["cost"]["micro_batch"] == 2
    assert record["cost"]["processes"] == 1
    assert record["cost"]["compile"] is False
    assert record["cost"]["precision"] == "fp32"


def test_bad_micro_batch_is_one_line(cli: Callable[..., Any], tmp_path: Path) -> None:
    result = cli("run", "--model", "unet", "--loss", "bce", *TINY, "--micro-batch", "0")
    assert result.code == 2
    assert "--micro-batch 0" in result.err and "Traceback" not in result.err


_OOM_PLUGIN = """
import segmentation_models_pytorch as smp
import torch
from harness import hookimpl


class Hungry(torch.nn.Module):
    \"\"\"A U-Net that 'runs out of memory' on batches of more than 2 while training.\"\"\"

    def __init__(self, **kwargs):
        super().__init__()
        self.net = smp.Unet(encoder_name="resnet18", encoder_weights=None, encoder_depth=3,
                            decoder_channels=(32, 16, 8), **kwargs)

    def forward(self, x):
        if self.training and x.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.net(x)


@hookimpl
def harness_models():
    def build(*, num_classes, in_channels, encoder=None):
        return Hungry(in_channels=in_channels, classes=num_classes)

    return {"hungry": build}
"""


def test_out_of_memory_on_the_first_step_halves_the_micro_batch(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    plugin = tmp_path / "hungry.py"
    plugin.write_text(_OOM_PLUGIN)
    runs = tmp_path / "runs"
    result = cli(
        "run", "--model", "hungry", "--loss", "bce", *TINY, "--plugin", plugin,
        "--set", "epochs=1", "--runs-dir", runs, "--leaderboards-dir", tmp_path / "b",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "retrying with micro-batches of 2" in result.err
    assert _record(runs)["cost"]["micro_batch"] == 2
    # asked for explicitly, the size is kept: the run fails with advice, one line
    runs2 = tmp_path / "runs2"
    result = cli(
        "run", "--model", "hungry", "--loss", "bce", *TINY, "--plugin", plugin,
        "--micro-batch", "4", "--set", "epochs=1", "--runs-dir", runs2,
        "--leaderboards-dir", tmp_path / "b",
    )  # fmt: skip
    assert result.code == 1
    assert "out of memory" in result.err and "--micro-batch" in result.err
    assert "Traceback" not in result.err


def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_two_process_run_gives_one_record_and_evaluates_like_one_process(tmp_path: Path) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    command = [
        sys.executable, "-m", "harness", "run", "--model", "unet", "--loss", "dice", *TINY,
        "--nproc", "2", "--runs-dir", str(runs), "--leaderboards-dir", str(boards),
    ]  # fmt: skip
    proc = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = list(runs.rglob("record.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["status"] == "succeeded"
    assert record["cost"]["processes"] == 2
    assert record["cost"]["device"].startswith("2 × cpu")
    assert len(record["per_image_dice"]) == len(record["val_images"]) == 2
    (board,) = boards.glob("*.md")
    assert sum(line.startswith("| 1 |") for line in board.read_text().splitlines()) == 1
    assert proc.stdout.count("per-class Dice") == 1  # only the main rank speaks
    # The record's validation (sharded over the ranks) is the saved model's, image by image:
    # every rank scored with rank 0's BatchNorm statistics, which the weights file holds.
    from harness.data.datasets import EvalDataset
    from harness.engine.device import Placement
    from harness.engine.inference import evaluate
    from harness.inference.predict import load_run

    run = load_run(records[0].parent)
    _, val = split(list_images(synthetic_dataset(5, 64, 0), "train"), 5, 0)
    dataset = EvalDataset(val, run.protocol.resolution)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank ran (OMP_NUM_THREADS=1): the same float sums
    try:
        alone = evaluate(run.model, dataset, run.protocol, Placement(torch.device("cpu")))
    finally:
        torch.set_num_threads(threads)
    assert list(alone.names) == record["val_images"]
    # Batches of other sizes (one image per rank here) may flip a few pixels: 1e-6 on the
    # mean, as for sharded scoring above; a rank scoring with its own BatchNorm statistics
    # was off by about 2e-3 on its images.
    assert abs(alone.mean() - record["mean_dice"]) < 1e-6
    assert torch.allclose(
        torch.tensor(alone.per_image()),
        torch.tensor(record["per_image_dice"], dtype=torch.float64),
        atol=1e-5,
        rtol=0,
    )

    # One checkpoint, scored by 1 and by 2 processes over an odd number of images.
    script = tmp_path / "score.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, sys
            import torch
            from harness.engine import distributed
            from harness.data.datasets import EvalDataset
            from harness.data.sources import synthetic_dataset
            from harness.data.layout import list_images
            from harness.inference.predict import load_run
            from harness.engine.inference import evaluate
            from harness.engine.device import Placement

            world = distributed.init("cpu")
            run = load_run({str(records[0].parent)!r})
            images = list_images(synthetic_dataset(5, 64, 0), "train")[:9]
            scores = evaluate(run.model, EvalDataset(images, run.protocol.resolution),
                              run.protocol, Placement(torch.device("cpu")), world=world)
            if world.is_main:
                json.dump({{"rows": scores.per_image().tolist(), "names": list(scores.names),
                           "mean": scores.mean()}}, open(sys.argv[1], "w"))
            distributed.shutdown()
            """
        )
    )
    results = {}
    for n in (1, 2):
        out = tmp_path / f"scores-{n}.json"
        launcher = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={n}", str(script), str(out),
        ]  # fmt: skip
        proc = subprocess.run(launcher, env=_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[n] = json.loads(out.read_text())
    one, two = results[1], results[2]
    assert one["names"] == two["names"] and len(one["names"]) == 9
    assert torch.allclose(torch.tensor(one["rows"]), torch.tensor(two["rows"]), atol=1e-6, rtol=0)
    assert abs(one["mean"] - two["mean"]) < 1e-6


_RANK_NAN_PLUGIN = """
import os

import torch
from harness import hookimpl


@hookimpl
def harness_losses():
    def build(**kwargs):
        def loss(logits, target):
            value = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
            # Only rank 1's loss turns into NaN, from its third step on.
            build.calls = getattr(build, "calls", 0) + 1
            if os.environ.get("RANK") == "1" and build.calls >= 3:
                return value * float("nan")
            return value

        return loss

    return {"nan-on-rank-1": build}
"""


@pytest.mark.slow
def test_a_loss_that_breaks_on_one_rank_fails_every_rank_with_a_record(tmp_path: Path) -> None:
    plugin = tmp_path / "nan_rank.py"
    plugin.write_text(_RANK_NAN_PLUGIN)
    runs = tmp_path / "runs"
    command = [
        sys.executable, "-m", "harness", "run", "--model", "unet", "--loss", "nan-on-rank-1",
        *TINY, "--plugin", str(plugin), "--nproc", "2", "--runs-dir", str(runs),
        "--leaderboards-dir", str(tmp_path / "boards"),
    ]  # fmt: skip
    proc = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    record = _record(runs)  # written by rank 0, whose own loss was fine
    assert record["status"] == "failed"
    assert "loss became nan at step 3 on rank 1 (epoch 2)" in record["error"], record["error"]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    said = [line for line in proc.stderr.splitlines() if "harness: run failed:" in line]
    assert len(said) == 1 and not said[0].startswith("[rank"), said  # rank 0 speaks for all
    assert not list((tmp_path / "boards").glob("*.md"))


@pytest.mark.slow
def test_compile_is_recorded_and_outside_the_hash(cli: Callable[..., Any], tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = cli(
        "run", "--model", "unet", "--loss", "bce", *TINY, "--compile", "--set", "epochs=1",
        "--runs-dir", runs, "--leaderboards-dir", tmp_path / "b",
    )  # fmt: skip
    assert result.code == 0, result.err
    record = _record(runs)
    assert record["cost"]["compile"] is True
    assert (
        record["benchmark"]["protocol"]["hash"] == protocols.load("tiny").derive(["epochs=1"]).hash
    )


@pytest.mark.slow
def test_ctrl_c_stops_every_rank_and_the_resume_ends_like_a_run_left_alone(
    tmp_path: Path,
) -> None:
    import signal
    import time

    def command(runs: Path, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "harness", "run", "--model", "unet", "--loss", "dice", *TINY,
            "--set", "epochs=6", "--nproc", "2", "--runs-dir", str(runs),
            "--leaderboards-dir", str(tmp_path / "boards"), *extra,
        ]  # fmt: skip

    alone = subprocess.run(
        command(tmp_path / "alone"), env=_env(), capture_output=True, text=True, timeout=600
    )
    assert alone.returncode == 0, alone.stderr[-3000:]
    runs = tmp_path / "stopped"
    proc = subprocess.Popen(
        command(runs), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while not list(runs.rglob("checkpoints/last.pt")) and time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # what a Ctrl-C in the terminal does to the launcher
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Resume with:" in err and "--nproc 2" in err
    assert not list(runs.rglob("record.json"))
    resumed = subprocess.run(
        command(runs, "--resume"), env=_env(), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    mine, reference = _record(runs), _record(tmp_path / "alone")
    assert mine["resumes"], "the second command should have resumed, not started afresh"
    assert_same_result(mine, reference)


def test_nproc_checks_the_input_once_before_starting_processes(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    result = cli("run", "--model", "unett", "--loss", "dice", *TINY, "--nproc", "2")
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if line.startswith("harness:")]
    assert len(lines) == 1 and "unknown model 'unett'" in lines[0]
    assert "[rank" not in result.err  # no rank was started
    result = cli("run", "--model", "unet", "--loss", "dice", *TINY, "--nproc", "0")
    assert result.code == 2 and "--nproc 0" in result.err


def test_resume_command_names_how_the_run_was_launched(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.engine import distributed
    from harness.runs.requests import RunRequest, resume_command

    request = RunRequest.from_options(
        model="unet", loss="dice", protocol="tiny", micro_batch=2, compile=True
    )
    plain = resume_command(request)
    assert plain.endswith("--micro-batch 2 --compile --runs-dir runs --resume")
    for key, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert "torchrun" in resume_command(request)  # a bare torchrun: rerun that command
    monkeypatch.setenv(distributed.NPROC_ENV, "2")
    assert "--nproc 2" in resume_command(request)


def test_device_hours_count_every_process() -> None:
    from harness.results.records import Record
    from harness.results.rows import Row

    def record(seed: int, processes: int) -> Record:
        return Record(
            status="succeeded", seed=seed, mean_dice=0.5, per_class_dice={}, benchmark={},
            entry={}, cost={"wall_s": 1800.0, "processes": processes},
        )  # fmt: skip

    assert Row(None, (record(0, 1), record(1, 2))).device_hours() == pytest.approx(1.5)


@pytest.mark.slow
def test_a_sweep_runs_each_value_on_two_processes(tmp_path: Path) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    command = [
        sys.executable, "-m", "harness", "sweep", "--vary", "loss=bce,dice", "--model", "unet",
        *TINY, "--set", "epochs=1", "--micro-batch", "1", "--nproc", "2",
        "--runs-dir", str(runs), "--leaderboards-dir", str(boards),
    ]  # fmt: skip
    proc = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in runs.rglob("record.json")]
    assert sorted(r["entry"]["loss"]["name"] for r in records) == ["bce", "dice"]
    assert all(r["cost"]["processes"] == 2 and r["cost"]["micro_batch"] == 1 for r in records)
    (ablation,) = boards.glob("*.ablation-loss.md")
    assert "| bce |" in ablation.read_text() and "| dice |" in ablation.read_text()
    assert proc.stdout.count("wrote ") == 1  # the main rank reports
