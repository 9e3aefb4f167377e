"""Where training stands (``harness.engine.state``): saved and loaded with every checkpoint."""

from __future__ import annotations

import io

import pytest
import torch

from harness.engine.state import TrainingState

#: The keys of today's checkpoints: old checkpoints must go on resuming, so none is removed or
#: renamed; one added (``window``, the timed training steps) is optional when read.
KEYS = {
    "epoch",
    "batch",
    "step",
    "seen",
    "train_time",
    "wall_s",
    "running",
    "history",
    "best",
    "window",
}


def _state() -> TrainingState:
    return TrainingState(
        epoch=3,
        batch=5,
        step=29,
        seen=232,
        train_time=12.5,
        wall_s=40.25,
        running=1.75,
        history=[{"epoch": 1, "loss": 0.9, "lr": 1e-3, "val_mean_dice": 0.4}],
        best_dice=0.4,
        best_epoch=1,
        best_per_class={"Radius": 0.5, "Ulna": 0.3},
        window={"images_per_s": 7.5, "warmup": 5, "timed": 30, "load": [1.0, 0.9, 0.8]},
    )


def test_to_state_has_the_checkpoint_keys_of_today() -> None:
    saved = _state().to_state()
    assert set(saved) == KEYS
    assert saved["best"] == {
        "mean_dice": 0.4,
        "epoch": 1,
        "per_class_dice": {"Radius": 0.5, "Ulna": 0.3},
    }
    assert (saved["epoch"], saved["batch"], saved["step"], saved["seen"]) == (3, 5, 29, 232)


def test_round_trip_through_a_state_file() -> None:
    """What a checkpoint stores (torch.save, read back with weights_only) is the same state."""
    buffer = io.BytesIO()
    torch.save(_state().to_state(), buffer)
    buffer.seek(0)
    assert TrainingState.from_state(torch.load(buffer, weights_only=True)) == _state()


def test_a_checkpoint_written_by_the_previous_layout_loads() -> None:
    old = {
        "kind": "harness-checkpoint",
        "format": 1,
        "epoch": 2,
        "batch": 0,
        "step": 16,
        "seen": 128,
        "train_time": 3.0,
        "wall_s": 9.0,
        "running": 0.0,
        "history": [{"epoch": 1, "loss": 0.5, "lr": 0.001}],
        "best": {"mean_dice": -1.0, "epoch": 0, "per_class_dice": {}},
        "optimizer": {},
        "weights_sha256": "0" * 64,
    }
    state = TrainingState.from_state(old)
    assert (state.epoch, state.step, state.best_dice, state.history[0]["loss"]) == (
        2,
        16,
        -1.0,
        0.5,
    )
    assert state.window is None  # saved before windows were: the next session times one


def test_saved_containers_are_copies() -> None:
    state = _state()
    saved = state.to_state()
    saved["history"][0]["loss"] = 99.0
    saved["best"]["per_class_dice"]["Radius"] = 99.0
    assert state.history[0]["loss"] == 0.9 and state.best_per_class["Radius"] == 0.5


def test_a_missing_key_raises() -> None:
    saved = _state().to_state()
    del saved["seen"]
    with pytest.raises(KeyError):
        TrainingState.from_state(saved)


def test_record_validation_keeps_the_best_epoch() -> None:
    state = TrainingState()
    assert state.record_validation(1, 0.3, {"Radius": 0.3})
    assert not state.record_validation(2, 0.2, {"Radius": 0.2})
    assert not state.record_validation(3, 0.3, {"Radius": 0.3})  # a tie is not better
    assert not state.record_validation(4, float("nan"), {"Radius": float("nan")})
    assert (state.best_epoch, state.best_dice, state.best_per_class) == (1, 0.3, {"Radius": 0.3})
    assert state.record_validation(5, 0.6, {"Radius": 0.6})
    assert (state.best_epoch, state.best_dice) == (5, 0.6)
