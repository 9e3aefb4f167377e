"""``--track tensorboard`` (``harness.runs.tracking.tensorboard``): event files that
TensorBoard's own reader loads, beside ``metrics.jsonl``'s line per epoch; after a kill and
``--resume`` each epoch and step once (TensorBoard's ``purge_step`` at the checkpoint's step);
a full disk is one warning line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from harness.classes import CLASSES
from harness.runs.tracking.metrics import METRICS_NAME, read_metrics
from harness.runs.tracking.tensorboard import TENSORBOARD_DIR
from tests.helpers import (
    STEPS_PER_EPOCH,
    fill_up,
    full_tmpfs,
    record_of,
    run_args,
    subprocess_env,
)

#: Keep every event (TensorBoard's reader samples by default).
ALL = {"scalars": 0, "images": 0, "tensors": 0}


def events(run: Path) -> EventAccumulator:
    """The run's TensorBoard events as TensorBoard itself reads them."""
    acc = EventAccumulator(str(run / TENSORBOARD_DIR), size_guidance=ALL)
    acc.Reload()
    return acc


def scalar_steps(acc: EventAccumulator, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


def tracked_args(plugin: Path, tmp_path: Path) -> list[str]:
    """tiny, 3 epochs of 2 steps, validated after epochs 2 and 3."""
    return [
        "run", "--model", "small-cnn", "--loss", "dice", "--plugin", str(plugin),
        "--protocol", "tiny", "--set", "epochs=3", "--set", "val_interval=2",
        "--device", "cpu", "--track", "tensorboard",
        "--runs-dir", str(tmp_path / "runs"), "--leaderboards-dir", str(tmp_path / "boards"),
    ]  # fmt: skip


def test_a_tracked_run_leaves_events_tensorboard_loads_and_a_line_per_epoch(
    cli, plugin: Path, tmp_path: Path
) -> None:
    result = cli(*tracked_args(plugin, tmp_path))
    assert result.code == 0, result.err
    (record_path,) = (tmp_path / "runs").rglob("record.json")
    run, record = record_path.parent, json.loads(record_path.read_text())
    steps = 2  # 8 training images of the 5-ID phantom, in batches of 4

    acc = events(run)
    assert scalar_steps(acc, "train/loss") == list(range(1, 3 * steps + 1))  # every step
    validated = [2 * steps, 3 * steps]  # after epochs 2 and 3
    dice = acc.Scalars("val/mean_dice")
    assert [e.step for e in dice] == validated
    wanted = [h["val_mean_dice"] for h in record["history"] if "val_mean_dice" in h]
    assert [e.value for e in dice] == pytest.approx(wanted, abs=1e-6)  # stored as float32
    assert dice[-1].value == pytest.approx(record["mean_dice"], abs=1e-6)
    for name in CLASSES:  # per class, grouped under val_dice/
        assert scalar_steps(acc, f"val_dice/{name}") == validated
    assert acc.Scalars(f"val_dice/{CLASSES[0]}")[-1].value == pytest.approx(
        record["per_class_dice"][CLASSES[0]], abs=1e-6
    )
    assert scalar_steps(acc, "train/lr") == [steps, 2 * steps, 3 * steps]
    pictures = acc.Images("val/prediction")
    assert [p.step for p in pictures] == validated
    assert pictures[0].width == 3 * pictures[0].height  # image, truth, prediction
    assert {"benchmark/text_summary", "entry/text_summary"} <= set(acc.Tags()["tensors"])

    lines = read_metrics(run)
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    assert [line["step"] for line in lines] == [steps, 2 * steps, 3 * steps]
    for line, history in zip(lines, record["history"], strict=True):
        assert line["loss"] == history["loss"] and line["lr"] == history["lr"]
        assert line["images_per_s"] > 0 and line["wall_s"] > 0
    assert "val_mean_dice" not in lines[0]
    assert lines[2]["val_mean_dice"] == record["mean_dice"]
    assert lines[2]["val_per_class_dice"] == record["per_class_dice"]
    assert list(lines[0])[:6] == ["epoch", "step", "loss", "lr", "images_per_s", "wall_s"]

    # A fresh rerun of the same folder replaces what the first run tracked.
    assert cli(*tracked_args(plugin, tmp_path)).code == 0
    assert [line["epoch"] for line in read_metrics(run)] == [1, 2, 3]
    assert len(list((run / TENSORBOARD_DIR).glob("events.out.tfevents.*"))) == 1
    assert scalar_steps(events(run), "train/loss") == list(range(1, 3 * steps + 1))


def wait_until(done, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before {what}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"no {what} within {timeout} s")


def _lines_written(runs: Path, count: int) -> bool:
    found = list(runs.rglob(METRICS_NAME))
    return bool(found) and len(found[0].read_text().splitlines()) >= count


def test_metrics_and_events_after_a_kill_and_resume_have_each_epoch_and_step_once(
    cli, plugin: Path, tmp_path: Path
) -> None:
    """SIGKILL part-way (right after epoch 2's line, which is written before that epoch's
    checkpoint: the kill lands before or after the checkpoint), then ``--resume``: one line
    per epoch, the record's history, and one loss event per step in TensorBoard's reading.
    (test_resume kills right after a checkpoint; the tests below take each case apart.)"""
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    args = [*run_args(plugin, runs, boards), "--track", "tensorboard"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: _lines_written(runs, 2), proc, "epoch 2's line")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not list(runs.rglob("record.json")), "the kill came too late: the run had finished"
    (metrics,) = runs.rglob(METRICS_NAME)
    before = [line["epoch"] for line in read_metrics(metrics)]
    assert before and before == list(range(1, len(before) + 1)) and len(before) < 4

    result = cli(*args, "--resume")
    assert result.code == 0, result.err
    record = record_of(runs)
    lines = read_metrics(metrics)
    assert [line["epoch"] for line in lines] == [1, 2, 3, 4]
    assert len(metrics.read_text().splitlines()) == 4
    for line, history in zip(lines, record["history"], strict=True):
        assert line["loss"] == history["loss"] and line["lr"] == history["lr"]
        assert line["val_mean_dice"] == history["val_mean_dice"]
    acc = events(metrics.parent)
    total = 4 * STEPS_PER_EPOCH
    assert scalar_steps(acc, "train/loss") == list(range(1, total + 1))
    assert scalar_steps(acc, "val/mean_dice") == [e * STEPS_PER_EPOCH for e in range(1, 5)]
    assert [e.value for e in acc.Scalars("train/epoch_loss")] == pytest.approx(
        [h["loss"] for h in record["history"]], rel=1e-6
    )


def test_on_a_full_disk_tensorboard_is_one_warning_and_no_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tensorboard")
    from harness.runs.tracking.tensorboard import TensorBoardLog

    folder = tmp_path / "disk"
    with full_tmpfs(folder, size="1m") as fill:
        fill.unlink()
        said: list[str] = []
        log = TensorBoardLog(folder / "tensorboard", texts={"entry": "x"}, warn=said.append)
        log.epoch_done({"epoch": 1, "step": 8, "loss": 1.0, "lr": 0.1})
        fill_up(fill)
        for step in range(9, 3000):
            log.step_done(step, 2, 2, 0.5)
        log.epoch_done({"epoch": 2, "step": 3000, "loss": 0.5, "lr": 0.1})
        log.run_ended()
    (line,) = said
    assert line.startswith(f"warning: {folder / 'tensorboard'}: the disk is full")
    assert "Traceback" not in capfd.readouterr().err


# -- resuming the event files ----------------------------------------------------------------


def test_the_ckpt_step_is_where_tensorboard_purges(tmp_path: Path) -> None:
    """A resume from the checkpoint after step S drops the events after S, keeps those at S."""
    from harness.runs.tracking.tensorboard import TensorBoardLog

    log = TensorBoardLog(tmp_path, texts={"entry": "x"})
    for step in range(1, 6):
        log.step_done(step, 1, 1, float(step))
    log.run_ended()
    again = TensorBoardLog(tmp_path, resumed_step=3, texts={"entry": "x"})
    for step in range(4, 7):
        again.step_done(step, 1, 1, 10.0 + step)
    again.run_ended()
    loss = EventAccumulator(str(tmp_path), size_guidance=ALL)
    loss.Reload()
    got = [(e.step, e.value) for e in loss.Scalars("train/loss")]
    assert got == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 14.0), (5, 15.0), (6, 16.0)]
    assert [e.step for e in loss.Tensors("entry/text_summary")] == [0]  # once, not again


def test_a_resume_that_tracks_for_the_first_time_writes_the_texts(tmp_path: Path) -> None:
    from harness.runs.tracking.tensorboard import TensorBoardLog

    TensorBoardLog(tmp_path, resumed_step=8, texts={"entry": "x"}).run_ended()
    acc = EventAccumulator(str(tmp_path), size_guidance=ALL)
    acc.Reload()
    assert acc.Tags()["tensors"] == ["entry/text_summary"]
