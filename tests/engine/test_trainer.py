"""The trainer's loop (``harness.engine.trainer``): what it reports to its observer (an
epoch before its checkpoint, which ``metrics.jsonl`` and the trackers rely on), and that a
stop at an epoch's end, resumed, continues where it stopped."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.classes import CLASSES
from harness.engine import checkpoint
from harness.engine.control import Interrupted
from harness.engine.trainer import Checkpointing, TrainResult, train, unit_of
from harness.engine.writer import CheckpointWriter
from harness.protocol import load as load_protocol
from tests.helpers import Recorder

CPU = torch.device("cpu")


def test_the_observer_hears_the_protocol(setting: dict[str, Any]) -> None:
    heard = Recorder()
    result = train(**setting, observer=heard)
    assert isinstance(result, TrainResult)
    steps = -(-len(setting["run"].train_images) // setting["run"].recipe.protocol.batch_size)
    assert heard.calls[0] == ("run_started", ("seed 0", 3 * steps, 0))
    assert heard.calls[-1] == ("run_ended", None)
    # On a CPU every step's loss is read back, and reported.
    assert heard.named("step_done") == [
        (epoch * steps + i + 1, epoch + 1, 3) for epoch in range(3) for i in range(steps)
    ]
    assert heard.named("validating") == [(2, 3), (3, 3)]  # every 2nd epoch, and the last
    metrics = heard.named("epoch_done")
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert [m["step"] for m in metrics] == [steps, 2 * steps, 3 * steps]
    assert [{k: m[k] for k in ("epoch", "loss", "lr")} for m in metrics] == [
        {k: h[k] for k in ("epoch", "loss", "lr")} for h in result.history
    ]
    assert "val_mean_dice" not in metrics[0] and "val_per_class_dice" not in metrics[0]
    assert metrics[2]["val_mean_dice"] == result.mean_dice
    assert metrics[2]["val_per_class_dice"] == result.per_class_dice
    assert list(metrics[2]["val_per_class_dice"]) == list(CLASSES)
    assert heard.named("message") == []


def test_a_stop_at_an_epochs_end_resumes_from_the_next(
    setting: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C noticed at the end of epoch 1 saves it; the resumed run starts at epoch 2
    (no step trained twice) and ends like a run left alone."""
    from harness.engine import control

    heard = Recorder()
    original = control.StopAgreement.agreed

    def agreed(self: control.StopAgreement, flag: bool) -> bool:
        """As if Ctrl-C had been pressed during epoch 1's last step."""
        return original(self, flag or len(heard.named("epoch_done")) == 1)

    monkeypatch.setattr(control.StopAgreement, "agreed", agreed)
    with pytest.raises(Interrupted) as stopped:
        train(**setting, observer=heard, checkpointing=Checkpointing(tmp_path))
    assert stopped.value.where == "the end of epoch 1"
    assert stopped.value.checkpoint == checkpoint.paths(tmp_path, "last")[0]
    assert heard.calls[-1] == ("run_ended", None)
    monkeypatch.undo()

    resumed_heard = Recorder()
    last = checkpoint.load(tmp_path)
    resumed = train(
        **setting, observer=resumed_heard, checkpointing=Checkpointing(tmp_path, resume_from=last)
    )
    steps = -(-len(setting["run"].train_images) // setting["run"].recipe.protocol.batch_size)
    assert resumed_heard.calls[0] == ("run_started", ("seed 0", 3 * steps, steps))
    assert resumed_heard.named("step_done")[0][:2] == (steps + 1, 2)
    alone = train(**setting)
    assert resumed.history == alone.history
    assert resumed.mean_dice == alone.mean_dice


def test_a_run_is_called_by_its_seed_or_by_its_fold_and_seed() -> None:
    proto = load_protocol("tiny")
    assert unit_of(proto, 3) == "seed 3"
    cross_validated = proto.with_values([("cv_folds", (0, 2, 4))])
    # A fold's run trains under the benchmark's protocol with its fold (runs.job.Job.protocol).
    assert unit_of(dataclasses.replace(cross_validated, fold=2), 1) == "fold 2 seed 1"


def test_the_trainer_reports_an_epoch_before_checkpointing_it(
    setting: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What an observer writes for an epoch is on disk before the epoch's checkpoint, so a
    kill between the two costs a line the resume writes again, never a gap."""
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
