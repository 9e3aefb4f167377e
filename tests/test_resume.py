"""Resume: a run killed (SIGKILL) or stopped (Ctrl-C) at any moment, then continued with
``--resume``, ends with exactly the Dice of the same run left alone.

The model is a small plugin with every kind of state a resume must restore: BatchNorm
buffers, dropout (the global torch generator), AdamW moments, a warm-up/cosine schedule,
the loader's shuffling and albumentations' own generators (``--aug basic``). A short
sleep in its forward pass makes the run last long enough to be killed part-way.

``--resume`` is the command-line flag that sets ``RunRequest.resume``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import harness
from harness.engine import checkpoint
from harness.engine.device import Placement
from harness.engine.distributed import World
from harness.engine.resume import EpochDraws, MidEpochRestart, restore, resume
from harness.engine.state import TrainingState
from harness.engine.step import StepSettings, TrainStep
from harness.engine.writer import Checkpointed, CheckpointWriter

#: The test model. ``HARNESS_TEST_SIGINT=train:K`` (or ``eval:K``) makes it send itself
#: SIGINT at its K-th forward pass in that mode, which is what a Ctrl-C does.
PLUGIN = """
import os
import signal
import time

import torch

from harness import hookimpl


class Small(torch.nn.Module):
    def __init__(self, in_channels, num_classes, delay):
        super().__init__()
        self.delay = delay
        self.calls = {"train": 0, "eval": 0}
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, 8, 3, padding=1),
            torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.Dropout2d(0.2),
            torch.nn.Conv2d(8, num_classes, 1),
        )

    def forward(self, x):
        mode = "train" if self.training else "eval"
        self.calls[mode] += 1
        if os.environ.get("HARNESS_TEST_SIGINT") == f"{mode}:{self.calls[mode]}":
            os.kill(os.getpid(), signal.SIGINT)
        if self.delay:
            time.sleep(self.delay)
        return self.body(x)


def small_cnn(*, num_classes, in_channels, encoder=None, delay=0.0):
    return Small(in_channels, num_classes, float(delay))


@hookimpl
def harness_models():
    return {"small-cnn": small_cnn}
"""

#: tiny with 4 epochs of 8 one-image steps, 2 validation batches per epoch.
STEPS_PER_EPOCH = 8


def run_args(plugin: Path, runs: Path, boards: Path) -> list[str]:
    return [
        "run", "--model", "small-cnn:delay=0.03", "--loss", "dice", "--aug", "basic",
        "--plugin", str(plugin), "--protocol", "tiny", "--set", "epochs=4",
        "--set", "batch_size=1", "--device", "cpu",
        "--runs-dir", str(runs), "--leaderboards-dir", str(boards),
    ]  # fmt: skip


def record_of(runs: Path) -> dict:
    (path,) = runs.rglob("record.json")
    return json.loads(path.read_text())


#: How far a resumed run may be from the run left alone. Nearly always they are equal bit
#: for bit; but two runs of the same command, neither interrupted, occasionally differ in
#: the last bits of the CPU kernels' sums (measured: 2 of 136 identical runs on a
#: loaded 2-core machine, epoch loss by 5e-8, validation Dice by up to 4.5e-5, one class's
#: Dice by 1.5e-4). A resume that gets anything wrong (a random state, the schedule, a
#: replayed batch) moves the epoch losses by far more than LOSS_TOLERANCE.
LOSS_TOLERANCE = 1e-6
DICE_TOLERANCE = 2e-4
CLASS_DICE_TOLERANCE = 2e-3


def assert_same_result(mine: dict, reference: dict) -> None:
    assert mine["status"] == "succeeded"
    if mine["history"] == reference["history"] and mine["mean_dice"] == reference["mean_dice"]:
        assert mine["per_class_dice"] == reference["per_class_dice"]
        return  # bit for bit, as nearly always
    assert [h["epoch"] for h in mine["history"]] == [h["epoch"] for h in reference["history"]]
    for got, want in zip(mine["history"], reference["history"], strict=True):
        assert got["lr"] == want["lr"], (got, want)
        assert abs(got["loss"] - want["loss"]) <= LOSS_TOLERANCE, (got, want)
        assert abs(got["val_mean_dice"] - want["val_mean_dice"]) <= DICE_TOLERANCE, (got, want)
    assert abs(mine["mean_dice"] - reference["mean_dice"]) <= DICE_TOLERANCE
    for name, want in reference["per_class_dice"].items():
        assert abs(mine["per_class_dice"][name] - want) <= CLASS_DICE_TOLERANCE, name


def subprocess_env() -> dict[str, str]:
    """The code under test (not an installed copy) and this process's thread count."""
    source = str(Path(harness.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
    threads = str(torch.get_num_threads())
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": threads, "COLUMNS": "200"}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "small_cnn.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, plugin: Path) -> dict:
    """The run left alone (in-process, through the library the command line calls)."""
    from harness.engine.events import NullObserver
    from harness.runs.execution import RunRequest, execute, plan

    root = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        request = RunRequest(
            model="small-cnn:delay=0.03",
            loss="dice",
            augmentation="basic",
            plugins=[str(plugin)],
            protocol="tiny",
            sets=["epochs=4", "batch_size=1"],
            device="cpu",
            runs_dir=root / "runs",
            leaderboards_dir=root / "boards",
        )
        execute(plan(request), NullObserver())
    return record_of(root / "runs")


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
    assert "already succeeded" in again.err and "nothing to resume" in again.err
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


def _components(width: int = 3) -> tuple[torch.nn.Module, TrainStep]:
    model = torch.nn.Linear(width, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    settings = StepSettings(Placement(CPU))
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
