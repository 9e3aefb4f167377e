"""Resume: a run killed (SIGKILL) or stopped (Ctrl-C) at any moment, then continued with
``--resume``, ends with exactly the Dice of the same run left alone.

The model is a small plugin (``PLUGIN`` in ``tests/helpers.py``) with every kind of state a
resume must restore: BatchNorm buffers, dropout (the global torch generator), AdamW
moments, a warm-up/cosine schedule, the loader's shuffling and albumentations' own
generators (``--augmentation basic``). A short sleep in its forward pass makes the run last long
enough to be killed part-way. Runs in bf16 and fp16 (CPU autocast; fp16 with a grad scaler
that skips an overflowing step) resume as exactly.

``--resume`` is the command-line flag that sets ``RunRequest.resume``.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from harness.engine import checkpoint
from harness.engine.device import Placement, Precision
from harness.engine.distributed import World
from harness.engine.resume import EpochDraws, MidEpochRestart, restore, resume
from harness.engine.state import TrainingState
from harness.engine.step import StepSettings, TrainStep
from harness.engine.writer import Checkpointed, CheckpointWriter
from tests.helpers import assert_same_result, record_of, run_args, subprocess_env


def wait_for(path_glob: tuple[Path, str], proc: subprocess.Popen, timeout: float = 120) -> Path:
    root, pattern = path_glob
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(root.rglob(pattern))
        if found:
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before {pattern} appeared")
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"{pattern} did not appear within {timeout} s")


def test_sigkill_after_first_checkpoint_then_resume_gives_the_same_dice(
    cli, plugin: Path, reference: dict, tmp_path: Path
) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    args = run_args(plugin, runs, boards)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = wait_for((runs, "checkpoints/last.pt"), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not list(runs.rglob("record.json")), "the kill came too late: the run had finished"
    saved = checkpoint.load(last.parent)
    assert saved is not None and 1 <= saved.epoch < 4

    result = cli(*args, "--resume")
    assert result.code == 0, result.err
    assert "resuming from the end of epoch" in result.err
    mine = record_of(runs)
    assert_same_result(mine, reference)
    assert mine["resumes"] and mine["resumes"][0]["epoch"] == saved.epoch
    assert (last.parent / "best.safetensors").is_file()
    assert (last.parent.parent / "weights-final.safetensors").is_file()
    # Succeeded: the resume state is spent and removed; nothing else in the folder is.
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.pt", "best.safetensors"]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_half_precision_run_killed_after_its_first_checkpoint_resumes_exactly(
    cli, plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precision: str
) -> None:
    """Under fp16 the run's third step overflows: the grad scaler skips it and halves its
    scale, which the checkpoint holds and the resume restores."""
    if precision == "fp16":
        monkeypatch.setenv("HARNESS_TEST_OVERFLOW", "3")

    def args(root: Path) -> list[str]:
        return [*run_args(plugin, root / "runs", root / "boards"), "--precision", precision]

    alone = cli(*args(tmp_path / "alone"))
    assert alone.code == 0, alone.err
    reference = record_of(tmp_path / "alone" / "runs")
    runs = tmp_path / "killed" / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args(tmp_path / "killed")],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = wait_for((runs, "checkpoints/last.pt"), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not list(runs.rglob("record.json")), "the kill came too late: the run had finished"
    saved = checkpoint.load(last.parent)
    assert saved is not None and 1 <= saved.epoch < 4 and saved.state["precision"] == precision
    if precision == "fp16":
        assert saved.state["scaler"]["scale"] == 2.0**15  # one step skipped, in epoch 1
    else:
        assert saved.state["scaler"] == {}  # bf16 needs no scaler

    result = cli(*args(tmp_path / "killed"), "--resume")
    assert result.code == 0, result.err
    mine = record_of(runs)
    assert mine["cost"]["precision"] == reference["cost"]["precision"] == precision
    assert mine["resumes"][0]["epoch"] == saved.epoch
    assert_same_result(mine, reference)


def test_a_run_resumes_in_the_precision_it_started_in(
    cli, plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    args = run_args(plugin, runs, boards)
    monkeypatch.setenv("HARNESS_TEST_SIGINT", "train:3")
    stopped = cli(*args, "--precision", "fp16")
    monkeypatch.delenv("HARNESS_TEST_SIGINT")
    assert stopped.code == 130, stopped.err
    command = stopped.err.split("Resume with:")[1].strip().splitlines()[0]
    assert " --precision fp16 " in command
    # fp32 (auto on a CPU) is another measurement: its own run, the fp16 checkpoint untouched.
    fp32 = cli(*args, "--resume")
    assert fp32.code == 0, fp32.err
    (record,) = runs.rglob("record.json")
    assert json.loads(record.read_text())["cost"]["precision"] == "fp32"
    (stopped_folder,) = [
        p.parent
        for p in runs.rglob("checkpoints")
        if checkpoint.exists(p)  # a `last` there
    ]
    assert stopped_folder.name == "seed-0" and "fp16" in stopped_folder.parent.name
    assert stopped_folder != record.parent
    # The command it printed continues the fp16 run, in fp16.
    again = cli(*shlex.split(command)[1:])
    assert again.code == 0, again.err
    resumed = json.loads((stopped_folder / "record.json").read_text())
    assert resumed["cost"]["precision"] == "fp16" and resumed["resumes"]
    assert resumed["entry"]["precision"] == "fp16"


@pytest.mark.parametrize(
    "when, where",
    [
        ("train:11", "epoch 2, batch 3 of 8"),  # mid-epoch: resume replays 3 batches of draws
        ("eval:3", "epoch 2, during validation"),  # after epoch 2's training, before its Dice
    ],
)
def test_ctrl_c_saves_says_how_to_resume_and_resumes_exactly(
    cli,
    plugin: Path,
    reference: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
    where: str,
) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    args = run_args(plugin, runs, boards)
    monkeypatch.setenv("HARNESS_TEST_SIGINT", when)
    stopped = cli(*args)
    monkeypatch.delenv("HARNESS_TEST_SIGINT")
    assert stopped.code == 130, stopped.err
    assert f"stopped at {where}; checkpoint saved:" in stopped.err
    command = stopped.err.split("Resume with:")[1].strip().splitlines()[0]
    assert command.startswith("harness run ") and command.endswith(" --resume")
    assert not list(runs.rglob("record.json")) and not list(boards.glob("*.md"))
    (state,) = runs.rglob("checkpoints/last.pt")
    saved = checkpoint.load(state.parent)
    assert (saved.epoch, saved.batch) == ((1, 3) if when.startswith("train") else (1, 8))

    import shlex

    resumed = cli(*shlex.split(command)[1:])
    assert resumed.code == 0, resumed.err
    assert_same_result(record_of(runs), reference)


def test_resume_of_a_succeeded_run_only_reports_it(cli, plugin: Path, tmp_path: Path) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    args = run_args(plugin, runs, boards)
    assert cli(*args).code == 0
    (record,) = runs.rglob("record.json")
    (board,) = boards.glob("*.md")
    before = {p: p.read_bytes() for p in [*runs.rglob("*"), board] if p.is_file()}
    again = cli(*args, "--resume")
    assert again.code == 0, again.err
    assert "already succeeded" in again.err and "skipped (--rerun trains it again)" in again.err
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p for p in [*runs.rglob("*"), board] if p.is_file()) == sorted(before)


def test_resume_without_a_checkpoint_starts_afresh_and_says_so(
    cli, plugin: Path, reference: dict, tmp_path: Path
) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    result = cli(*run_args(plugin, runs, boards), "--resume")
    assert result.code == 0, result.err
    assert "no checkpoint in" in result.err and "starting from the beginning" in result.err
    assert_same_result(record_of(runs), reference)


def test_a_plain_rerun_never_overwrites_an_interrupted_run(
    cli, plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    args = run_args(plugin, runs, boards)
    monkeypatch.setenv("HARNESS_TEST_SIGINT", "train:9")
    assert cli(*args).code == 130
    monkeypatch.delenv("HARNESS_TEST_SIGINT")
    (state,) = runs.rglob("checkpoints/last.pt")
    before = state.read_bytes()
    again = cli(*args)
    assert again.code == 2
    lines = [line for line in again.err.splitlines() if line.startswith("harness:")]
    assert len(lines) == 1 and "--resume" in lines[0] and "interrupted run" in lines[0]
    assert state.read_bytes() == before


def test_with_loader_workers_a_stopped_run_resumes_exactly(
    cli, plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers each reseed their copy of the augmentation from the loader's generator."""

    def args(root: Path) -> list[str]:
        return [*run_args(plugin, root / "runs", root / "boards"), "--set", "num_workers=2"]

    alone = cli(*args(tmp_path / "alone"))
    assert alone.code == 0, alone.err
    monkeypatch.setenv("HARNESS_TEST_SIGINT", "train:11")
    assert cli(*args(tmp_path / "stopped")).code == 130
    monkeypatch.delenv("HARNESS_TEST_SIGINT")
    resumed = cli(*args(tmp_path / "stopped"), "--resume")
    assert resumed.code == 0, resumed.err
    assert_same_result(
        record_of(tmp_path / "stopped" / "runs"), record_of(tmp_path / "alone" / "runs")
    )


# -- harness.engine.resume, piece by piece ------------------------------------------------


def _components(width: int = 3, precision: str = "fp32") -> tuple[torch.nn.Module, TrainStep]:
    model = torch.nn.Linear(width, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    settings = StepSettings(Placement(CPU, Precision(precision)))
    step = TrainStep(model, torch.nn.functional.mse_loss, optimizer, scheduler, settings=settings)
    return model, step


def _saved(
    folder: Path, state: TrainingState, epoch_rng: dict | None = None
) -> checkpoint.Checkpoint:
    model, step = _components()
    parts = Checkpointed(model, step, torch.Generator().manual_seed(0), None, "sgd", "flat")
    writer = CheckpointWriter(folder, parts, RUN_ID)
    writer.save_now(state, epoch_rng)
    return checkpoint.load(folder)


CPU = torch.device("cpu")
RUN_ID = {"benchmark": "b", "entry": "e", "seed": 0}


def test_restore_refuses_another_runs_checkpoint_naming_it(tmp_path: Path) -> None:
    ckpt = _saved(tmp_path, TrainingState(epoch=1))
    model, step = _components()
    with pytest.raises(checkpoint.CheckpointError) as caught:
        restore(ckpt, {**RUN_ID, "seed": 1}, model, step.optimizer, step.scheduler, step.scaler)
    assert str(caught.value).startswith(f"{ckpt.path}: this checkpoint belongs to another run")
    assert f"delete {tmp_path} to start this run afresh" in str(caught.value)


def test_restore_refuses_weights_that_do_not_fit_naming_them(tmp_path: Path) -> None:
    ckpt = _saved(tmp_path, TrainingState(epoch=1))
    model, step = _components(width=5)
    with pytest.raises(checkpoint.CheckpointError) as caught:
        restore(ckpt, RUN_ID, model, step.optimizer, step.scheduler, step.scaler)
    assert str(caught.value).startswith(f"{ckpt.weights_path}: does not fit the model (")
    assert "was the model plugin changed?" in str(caught.value)


def test_restore_refuses_a_mid_epoch_checkpoint_without_its_epochs_start(tmp_path: Path) -> None:
    ckpt = _saved(tmp_path, TrainingState(epoch=1, batch=2), epoch_rng=None)
    model, step = _components()
    with pytest.raises(checkpoint.CheckpointError, match="incomplete or incompatible") as caught:
        restore(ckpt, RUN_ID, model, step.optimizer, step.scheduler, step.scaler)
    assert str(caught.value).startswith(f"{ckpt.path}: ")


def test_restore_loads_the_weights_and_resume_the_state(tmp_path: Path) -> None:
    state = TrainingState(epoch=2, step=8, seen=64, history=[{"epoch": 1, "loss": 0.5}])
    ckpt = _saved(tmp_path, state)
    model, step = _components()
    resumed = resume(ckpt, RUN_ID, model, step, torch.Generator(), None, World())
    assert resumed.state == state and resumed.restart is None
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ckpt.weights.items())


def test_restore_gives_an_fp16_runs_grad_scaler_its_saved_state(tmp_path: Path) -> None:
    model, step = _components(precision="fp16")
    scaler = {
        "scale": 1024.0,  # lowered by skipped steps
        "growth_factor": 2.0,
        "backoff_factor": 0.5,
        "growth_interval": 2000,
        "_growth_tracker": 7,
    }
    step.scaler.load_state_dict(scaler)
    parts = Checkpointed(model, step, torch.Generator().manual_seed(0), None, "sgd", "flat")
    CheckpointWriter(tmp_path, parts, RUN_ID).save_now(TrainingState(epoch=1), None)
    ckpt = checkpoint.load(tmp_path)
    assert ckpt.state["scaler"] == scaler

    model, step = _components(precision="fp16")
    assert step.scaler.get_scale() == 2.0**16
    resume(ckpt, RUN_ID, model, step, torch.Generator(), None, World())
    assert step.scaler.state_dict() == scaler
    step(torch.ones(4, 3), torch.zeros(4, 2))  # trains on from there
    assert step.scaler.state_dict() == {**scaler, "_growth_tracker": 8}


def _draws(generator: torch.Generator, restart: MidEpochRestart | None = None) -> EpochDraws:
    loader = torch.utils.data.DataLoader(
        list(range(10)), batch_size=3, shuffle=True, generator=generator
    )
    return EpochDraws(loader, generator, None, restart)


def test_a_mid_epoch_restart_replays_the_rest_of_that_epoch_then_goes_on() -> None:
    alone = _draws(torch.Generator().manual_seed(4))
    first = alone.start()
    epoch_rng = alone.epoch_rng
    batches = [b.tolist() for b in first.batches]
    stop_rng = checkpoint.global_rng_state()
    torch.rand(5)  # the global state moves on after the stop
    next_epoch = [b.tolist() for b in alone.start().batches]

    restart = MidEpochRestart(Path("last.pt"), 2, epoch_rng, stop_rng)
    resumed = _draws(torch.Generator().manual_seed(99), restart)
    again = resumed.start()
    assert again.done == 2 and [b.tolist() for b in again.batches] == batches[2:]
    assert torch.equal(torch.get_rng_state(), stop_rng["torch"])  # put back after the replay
    assert [b.tolist() for b in resumed.start().batches] == next_epoch  # then fresh epochs
