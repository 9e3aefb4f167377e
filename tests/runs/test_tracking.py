"""Watching a run (``harness.runs.tracking``): ``metrics.jsonl`` one line per epoch, also
after a kill and ``--resume``; ``--track tensorboard`` event files that TensorBoard's own
reader loads; a missing TensorBoard is one line before any training."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from harness import protocol as protocols
from harness.classes import CLASSES
from harness.data.layout import list_images, split
from harness.data.sources import synthetic_dataset
from harness.engine.events import NullObserver, Observers
from harness.engine.writer import CheckpointWriter
from harness.runs.tracking.metrics import METRICS_NAME, MetricsLog, read_metrics
from harness.runs.tracking.preview import Preview
from harness.runs.tracking.tensorboard import TENSORBOARD_DIR
from tests.helpers import (
    PLUGIN,
    STEPS_PER_EPOCH,
    Recorder,
    fill_up,
    full_tmpfs,
    record_of,
    run_args,
    subprocess_env,
)

#: Keep every event (TensorBoard's reader samples by default).
ALL = {"scalars": 0, "images": 0, "tensors": 0}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "small_cnn.py"
    path.write_text(PLUGIN)
    return path


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


def test_a_run_without_track_writes_metrics_jsonl_and_no_events(
    cli, plugin: Path, tmp_path: Path
) -> None:
    args = tracked_args(plugin, tmp_path)
    at = args.index("--track")
    result = cli(*args[:at], *args[at + 2 :])
    assert result.code == 0, result.err
    (metrics,) = (tmp_path / "runs").rglob(METRICS_NAME)
    assert [line["epoch"] for line in read_metrics(metrics)] == [1, 2, 3]
    assert not list((tmp_path / "runs").rglob(TENSORBOARD_DIR))


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


# -- metrics.jsonl on resume, kill by kill ----------------------------------------------------


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def test_a_resume_drops_the_lines_after_the_checkpoint_and_a_cut_line(tmp_path: Path) -> None:
    """Killed after epoch 3's line (and while writing epoch 4's) but before epoch 3's
    checkpoint: the resume from epoch 2 keeps lines 1-2 as they were."""
    path = tmp_path / METRICS_NAME
    lines = [json.dumps({"epoch": e, "step": 8 * e, "loss": 1 / e}) for e in (1, 2, 3)]
    _write(path, [*lines, '{"epoch": 4, "st'])
    state = {"epoch": 2, "step": 16, "history": [{"epoch": 1, "loss": 1.0}, {"epoch": 2}]}
    log = MetricsLog(path, resumed=state)
    assert path.read_text().splitlines() == lines[:2]
    log.epoch_done({"loss": 0.25, "epoch": 3, "lr": 0.1, "step": 24})
    assert read_metrics(path)[-1] == {"epoch": 3, "step": 24, "loss": 0.25, "lr": 0.1}
    assert [line["epoch"] for line in read_metrics(path)] == [1, 2, 3]


def test_an_epoch_the_file_lacks_comes_from_the_checkpoints_history(tmp_path: Path) -> None:
    path = tmp_path / METRICS_NAME
    _write(path, [json.dumps({"epoch": 1, "step": 8, "loss": 1.0})])
    history = [{"epoch": 1, "loss": 1.5, "lr": 0.1}, {"epoch": 2, "loss": 0.5, "lr": 0.2}]
    MetricsLog(path, resumed={"epoch": 2, "step": 16, "history": history})
    assert read_metrics(path) == [
        {"epoch": 1, "step": 8, "loss": 1.0},  # the file's own line stays
        {"epoch": 2, "loss": 0.5, "lr": 0.2},
    ]


def test_a_fresh_start_empties_the_file(tmp_path: Path) -> None:
    path = tmp_path / METRICS_NAME
    _write(path, [json.dumps({"epoch": 1})])
    MetricsLog(path, resumed=None)
    assert path.read_text() == ""


def test_on_a_full_disk_metrics_lines_are_one_warning_and_the_earlier_lines_stay(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "disk"
    with full_tmpfs(folder) as fill:
        fill.unlink()
        said: list[str] = []
        log = MetricsLog(folder / METRICS_NAME, warn=said.append)
        log.epoch_done({"epoch": 1, "step": 8, "loss": 1.0})
        fill_up(fill)
        long = {"step": 16, "loss": 0.5, "pad": "x" * 10_000}  # past the first line's page
        log.epoch_done({"epoch": 2, **long})
        log.epoch_done({"epoch": 3, **long})
        assert read_metrics(folder / METRICS_NAME) == [{"epoch": 1, "step": 8, "loss": 1.0}]
    (line,) = said
    assert line.startswith(f"warning: {folder}: the disk is full (No space left on device)")


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


def test_the_trainer_reports_an_epoch_before_checkpointing_it(
    setting: dict[str, Any],  # noqa: F811 - the fixture imported from test_trainer
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What an observer writes for an epoch is on disk before the epoch's checkpoint, so a
    kill between the two costs a line the resume writes again, never a gap."""
    from harness.engine.trainer import Checkpointing, train

    heard = Recorder()
    original = CheckpointWriter.save_epoch_end

    def save_epoch_end(self: CheckpointWriter, state: Any, improved: bool) -> Path | None:
        heard.calls.append(("checkpoint", state.epoch))
        return original(self, state, improved)

    monkeypatch.setattr(CheckpointWriter, "save_epoch_end", save_epoch_end)
    train(**setting, observer=heard, checkpointing=Checkpointing(tmp_path))
    order = [
        (kind, args["epoch"] if kind == "epoch_done" else args)
        for kind, args in heard.calls
        if kind in ("epoch_done", "checkpoint")
    ]
    assert order == [(kind, e) for e in (1, 2, 3) for kind in ("epoch_done", "checkpoint")]
    steps = -(-len(setting["run"].train_images) // setting["run"].recipe.protocol.batch_size)
    assert heard.named("validated") == [(2, 2 * steps), (3, 3 * steps)]
    metrics = heard.named("epoch_done")
    assert all(m["images_per_s"] > 0 for m in metrics)
    assert [m["wall_s"] for m in metrics] == sorted(m["wall_s"] for m in metrics)


# -- the prediction picture, and the observers' plumbing --------------------------------------


def test_the_preview_leaves_the_model_and_the_random_state_as_they_were() -> None:
    proto = protocols.load("tiny")
    root = synthetic_dataset(proto.synth_ids, proto.synth_size, proto.synth_seed)
    _, val = split(list_images(root, "train"), proto.folds, proto.fold)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Dropout(0.5), torch.nn.Conv2d(4, 29, 1)
    )
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    picture = Preview(val[0], proto.resolution, side=32).render(model)
    assert picture.shape == (32, 96, 3) and picture.dtype.name == "uint8"
    assert model.training
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_observers_hand_every_call_to_each_and_end_all_even_after_an_error() -> None:
    first, second = Recorder(), Recorder()

    class Failing(NullObserver):
        def run_ended(self) -> None:
            raise OSError("disk full")

    both = Observers(first, Failing(), second)
    both.run_started("seed 0", 4, 0)
    both.step_done(1, 1, 2, 0.5)
    both.validating(1, 2)
    both.validated(1, 1, torch.nn.Identity())
    both.epoch_done({"epoch": 1})
    both.message("hello")
    with pytest.raises(OSError, match="disk full"):
        both.run_ended()
    assert first.calls == second.calls
    assert [kind for kind, _ in first.calls] == [
        "run_started", "step_done", "validating", "validated", "epoch_done", "message",
        "run_ended",
    ]  # fmt: skip


# -- bad input -------------------------------------------------------------------------------


def test_without_tensorboard_installed_one_line_says_how_before_training(
    cli, plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    result = cli(*tracked_args(plugin, tmp_path))
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert line.startswith("harness: error: --track tensorboard: TensorBoard is not installed")
    assert "pip install tensorboard" in line and "segmentation-harness[track]" in line
    assert not (tmp_path / "runs").exists()  # nothing trained, no folder made


def test_an_unknown_tracker_is_one_line(cli, plugin: Path, tmp_path: Path) -> None:
    args = tracked_args(plugin, tmp_path)
    args[args.index("tensorboard")] = "tensorboard,comet"
    result = cli(*args)
    assert result.code == 2
    assert result.err.strip() == (
        "harness: error: --track 'comet': choose from tensorboard, mlflow, wandb "
        "(several at once: --track tensorboard,mlflow)"
    )
    assert not (tmp_path / "runs").exists()


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


def test_a_ray_worker_sends_the_events_and_metrics_back_with_the_run_folder(
    plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker side of ``--jobs``/``--cluster`` (``harness.runs.executors.ray.train_task``,
    called here without Ray) on a worker that does not see the runs folder: the run's files it
    sends back include ``metrics.jsonl`` and the TensorBoard event files."""
    jobs = pytest.importorskip("harness.runs.executors.ray")
    from harness.runs.executors import markers
    from harness.runs.job import JobSpec, job_of
    from harness.runs.planning import plan
    from harness.runs.requests import RunRequest

    monkeypatch.setenv(markers.COPY_ENV, "1")
    request = RunRequest.from_options(
        model="small-cnn",
        loss="dice",
        plugins=(str(plugin),),
        protocol="tiny",
        sets=("epochs=2",),
        device="cpu",
        track="tensorboard",
        runs_dir=tmp_path / "runs",
    )
    spec = JobSpec.of(job_of(plan(request), 0), runs_dir=tmp_path / "runs")
    outcome = jobs.train_task(spec, token="t", threads=1)
    assert outcome.status == "succeeded", outcome.reason
    assert METRICS_NAME in outcome.files
    assert [json.loads(line)["epoch"] for line in outcome.files[METRICS_NAME].splitlines()] == [
        1,
        2,
    ]
    sent = [name for name in outcome.files if name.startswith(f"{TENSORBOARD_DIR}/")]
    assert len(sent) == 1 and "tfevents" in sent[0] and outcome.files[sent[0]]
