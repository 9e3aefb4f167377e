"""Where training stands: the counters, history and best epoch that a checkpoint carries
beside the components' own states, and that a resumed run continues from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainingState:
    """Everything besides the components that a checkpoint carries about a run's progress."""

    epoch: int = 0  # epochs completed
    batch: int = 0  # batches done in epoch ``epoch + 1`` (non-zero only part-way through it)
    step: int = 0  # optimizer steps taken
    seen: int = 0  # training images seen
    train_time: float = 0.0  # seconds spent in training steps
    wall_s: float = 0.0  # spent by earlier sessions of this run (as saved)
    running: float = 0.0  # sum of this epoch's batch losses
    history: list[dict[str, float]] = field(default_factory=list)
    best_dice: float = -1.0
    best_epoch: int = 0
    best_per_class: dict[str, float] = field(default_factory=dict)
    #: The timed window of training steps once it is complete (``harness.engine.throughput``);
    #: None until then (a session stopped inside it times a new one when resumed).
    window: dict[str, Any] | None = None

    def record_validation(self, epoch: int, mean: float, per_class: Mapping[str, float]) -> bool:
        """Note epoch ``epoch``'s validated Dice; True when it is the best so far."""
        if not mean > self.best_dice:  # NaN is never the best
            return False
        self.best_dice, self.best_epoch, self.best_per_class = mean, epoch, dict(per_class)
        return True

    def to_state(self) -> dict[str, Any]:
        """The checkpoint's keys for this state (a layout old checkpoints share)."""
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "seen": self.seen,
            "train_time": self.train_time,
            "wall_s": self.wall_s,
            "running": self.running,
            "history": [dict(h) for h in self.history],
            "best": {
                "mean_dice": self.best_dice,
                "epoch": self.best_epoch,
                "per_class_dice": dict(self.best_per_class),
            },
            "window": None if self.window is None else dict(self.window),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TrainingState:
        """The state ``to_state`` saved; a missing or malformed key raises (KeyError, ...)."""
        best = state["best"]
        return cls(
            epoch=int(state["epoch"]),
            batch=int(state["batch"]),
            step=int(state["step"]),
            seen=int(state["seen"]),
            train_time=float(state["train_time"]),
            wall_s=float(state["wall_s"]),
            running=float(state["running"]),
            history=[dict(h) for h in state["history"]],
            best_dice=float(best["mean_dice"]),
            best_epoch=int(best["epoch"]),
            best_per_class=dict(best["per_class_dice"]),
            window=dict(state["window"]) if state.get("window") else None,  # older: none
        )
