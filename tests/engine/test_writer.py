"""Writing checkpoints while training goes on (``harness.engine.writer``)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from harness.engine import checkpoint
from harness.engine.device import Placement
from harness.engine.state import TrainingState
from harness.engine.step import StepSettings, TrainStep
from harness.engine.writer import BackgroundWriter, Checkpointed, CheckpointWriter, cpu_copy

#: Every key of a ``last`` state file as the trainer has always written it.
LAST_KEYS = {
    "kind", "format", "weights_sha256", "run", "epoch", "batch", "step", "seen", "train_time",
    "wall_s", "running", "history", "best", "optimizer", "scheduler", "scaler", "rng",
    "epoch_start_rng", "micro_batch", "running_by_rank",
}  # fmt: skip
#: Keys written since (an older state file lacks them and still loads: test_state.py).
NEWER_KEYS = {"started_at", "window"}


def test_wait_blocks_until_the_job_is_done() -> None:
    release, done = threading.Event(), []

    def job() -> None:
        release.wait(5)
        done.append(True)

    writer = BackgroundWriter()
    writer.submit(job)
    assert not done
    release.set()
    writer.wait()
    assert done == [True]


def test_submit_waits_for_the_job_before() -> None:
    order: list[int] = []
    writer = BackgroundWriter()
    with writer:
        for i in range(3):
            writer.submit(lambda i=i: order.append(i))
    assert order == [0, 1, 2]


def test_a_jobs_error_is_raised_by_wait_once() -> None:
    writer = BackgroundWriter()
    writer.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        writer.wait()
    writer.wait()  # raised once, then forgotten


def test_leaving_normally_raises_the_jobs_error() -> None:
    with pytest.raises(OSError, match="disk full"), BackgroundWriter() as writer:
        writer.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))


def test_when_already_failing_the_first_error_is_kept() -> None:
    with pytest.raises(RuntimeError, match="the training error"), BackgroundWriter() as writer:
        writer.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
        raise RuntimeError("the training error")


def test_cpu_copy_copies_tensors_and_rebuilds_containers() -> None:
    tensor = torch.ones(2)
    value = {"a": [tensor, (tensor, 3)], "b": "x"}
    copied = cpu_copy(value)
    tensor.add_(1)
    assert torch.equal(copied["a"][0], torch.ones(2)) and torch.equal(
        copied["a"][1][0], torch.ones(2)
    )
    assert copied["a"][1][1] == 3 and copied["b"] == "x" and isinstance(copied["a"][1], tuple)


def _parts() -> Checkpointed:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    settings = StepSettings(Placement(torch.device("cpu")))
    step = TrainStep(model, torch.nn.functional.mse_loss, optimizer, scheduler, settings=settings)
    step.micro_batch = 2
    generator = torch.Generator().manual_seed(0)
    return Checkpointed(model, step, generator, None, "sgd", "flat")


RUN = {"benchmark": "b", "entry": "e", "seed": 0}


def test_epoch_end_writes_last_and_best_when_improved(tmp_path: Path) -> None:
    parts = _parts()
    state = TrainingState(
        epoch=1, step=4, best_dice=0.5, best_epoch=1, best_per_class={"Ulna": 0.5}
    )
    with CheckpointWriter(tmp_path, parts, RUN, {"started_at": "now"}) as writer:
        path = writer.save_epoch_end(state, improved=True)
        weights_then = {k: v.clone() for k, v in parts.model.state_dict().items()}
        with torch.no_grad():
            parts.model.weight.add_(1.0)  # training goes on while the write happens
    assert path == checkpoint.paths(tmp_path, "last")[0]
    last = checkpoint.load(tmp_path, "last")
    assert set(last.state) == LAST_KEYS | NEWER_KEYS
    assert last.state["run"] == RUN and last.state["micro_batch"] == 2
    assert last.state["epoch_start_rng"] is None and last.state["running_by_rank"] is None
    assert all(torch.equal(last.weights[k], v) for k, v in weights_then.items())
    assert TrainingState.from_state(last.state) == state
    best = checkpoint.load(tmp_path, "best")
    assert (best.state["epoch"], best.state["mean_dice"]) == (1, 0.5)
    assert best.state["per_class_dice"] == {"Ulna": 0.5} and best.state["run"] == RUN


def test_epoch_end_without_improvement_leaves_best_alone(tmp_path: Path) -> None:
    with CheckpointWriter(tmp_path, _parts(), RUN) as writer:
        writer.save_epoch_end(TrainingState(epoch=1), improved=False)
    assert checkpoint.exists(tmp_path, "last") and not checkpoint.exists(tmp_path, "best")


def test_a_stop_mid_epoch_saves_the_epochs_start_and_each_ranks_loss(tmp_path: Path) -> None:
    epoch_rng = {"loader": torch.Generator().manual_seed(7).get_state(), "augment": []}
    writer = CheckpointWriter(tmp_path, _parts(), RUN)
    path = writer.save_now(TrainingState(batch=3), epoch_rng, running_by_rank=[1.0, 2.0])
    assert path is not None and path.is_file()  # on disk before returning
    state = checkpoint.load(tmp_path).state
    assert state["batch"] == 3 and state["running_by_rank"] == [1.0, 2.0]
    assert torch.equal(state["epoch_start_rng"]["loader"], epoch_rng["loader"])


def test_no_folder_writes_nothing(tmp_path: Path) -> None:
    writer = CheckpointWriter(None, _parts(), RUN)
    assert writer.save_now(TrainingState(batch=1), {}) is None
    assert writer.save_epoch_end(TrainingState(epoch=1), improved=True) is None
    assert list(tmp_path.iterdir()) == []
