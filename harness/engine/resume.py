"""Resuming a run from its ``last`` checkpoint so that it ends exactly as if left alone.

``restore`` loads the components' states (any mismatch names the file). A checkpoint taken
at an epoch's end restores the random states and training simply goes on; one taken
part-way through an epoch (on Ctrl-C) is a ``MidEpochRestart``: that epoch starts again
from its saved start-of-epoch random state and ``EpochDraws`` replays the draws (shuffle,
augmentation) of the batches already trained, skipping them, before the global random
state of the moment of the stop is put back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.engine import checkpoint
from harness.engine.checkpoint import Checkpoint, CheckpointError
from harness.engine.distributed import World
from harness.engine.state import TrainingState
from harness.engine.step import TrainStep
from harness.errors import one_line


def restore(
    ckpt: Checkpoint,
    run_id: Mapping[str, Any] | None,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
) -> None:
    """Load a checkpoint into freshly built components; any mismatch names the file."""
    state = ckpt.state
    if run_id is not None and state.get("run") != dict(run_id):
        raise CheckpointError(
            f"{ckpt.path}: this checkpoint belongs to another run ({state.get('run')}); "
            f"delete {ckpt.path.parent} to start this run afresh"
        )
    try:
        model.load_state_dict(ckpt.weights)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(
            f"{ckpt.weights_path}: does not fit the model ({one_line(exc, 160)}); was the "
            f"model plugin changed? delete {ckpt.path.parent} to start afresh"
        ) from None
    try:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler.is_enabled() and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        progress = TrainingState.from_state(state)
        missing = [k for k in ("global", "loader", "augment") if k not in state["rng"]]
        if progress.batch and not isinstance(state.get("epoch_start_rng"), dict):
            missing.append("epoch_start_rng")
        if missing:
            raise KeyError(missing[0])
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise CheckpointError(
            f"{ckpt.path}: incomplete or incompatible training state "
            f"({type(exc).__name__}: {one_line(exc, 160)}); delete {ckpt.path.parent} "
            "to start afresh"
        ) from None


def set_augment_rng(augment: Any, state: list[Any], path: Path) -> None:
    """``checkpoint.set_augment_rng_state``, its error naming the checkpoint ``path``."""
    try:
        checkpoint.set_augment_rng_state(augment, state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class MidEpochRestart:
    """A checkpoint taken after ``batch`` batches of an epoch: that epoch is replayed."""

    path: Path  # the checkpoint's state file, for errors
    batch: int
    epoch_start_rng: Mapping[str, Any]  # the loader's and the augmentation's, at the start
    global_rng: Mapping[str, Any]  # at the stop


@dataclass
class Resumed:
    """Where a resumed run continues: its training state, and its mid-epoch restart if any."""

    state: TrainingState
    restart: MidEpochRestart | None


def resume(
    ckpt: Checkpoint,
    run_id: Mapping[str, Any] | None,
    model: torch.nn.Module,
    step: TrainStep,
    generator: torch.Generator,
    augment: Any,
    world: World,
    *,
    automatic_micro_batch: bool = True,
) -> Resumed:
    """Load ``ckpt`` into the components and generators of a run built afresh.

    With ``automatic_micro_batch`` (no micro-batch asked for), the micro-batch an earlier
    session fell back to after running out of memory is taken up again.
    """
    restore(ckpt, run_id, model, step.optimizer, step.scheduler, step.scaler)
    saved = ckpt.state
    if automatic_micro_batch and saved.get("micro_batch"):
        step.micro_batch = int(saved["micro_batch"])
    state = TrainingState.from_state(saved)
    by_rank = saved.get("running_by_rank")
    if world.active and isinstance(by_rank, list) and len(by_rank) == world.size:
        state.running = float(by_rank[world.rank])  # this rank's part-epoch loss sum
    rng = saved["rng"]
    if state.batch:
        restart = MidEpochRestart(ckpt.path, state.batch, saved["epoch_start_rng"], rng["global"])
        return Resumed(state, restart)
    checkpoint.set_global_rng_state(rng["global"])
    generator.set_state(rng["loader"])
    set_augment_rng(augment, rng["augment"], ckpt.path)
    return Resumed(state, None)


@dataclass
class EpochStart:
    """An epoch's batches, ready to train: ``done`` of them already trained (a restart)."""

    batches: Iterator[Any]
    done: int


class EpochDraws:
    """Where each epoch's data draws start: from the loader's generator as it stands, or, for
    the epoch of a ``MidEpochRestart``, from the saved start of that epoch, replayed.

    ``epoch_rng`` is the random state at the start of the current epoch (what a mid-epoch
    checkpoint saves so that a resume can replay it).
    """

    def __init__(
        self,
        loader: Any,
        generator: torch.Generator,
        augment: Any,
        restart: MidEpochRestart | None = None,
    ) -> None:
        self.loader = loader
        self.generator = generator
        self.augment = augment
        self.restart = restart
        self.epoch_rng: dict[str, Any] | None = None

    def start(self) -> EpochStart:
        """The next epoch's batches; a restart's epoch skips the batches already trained."""
        restart, self.restart = self.restart, None
        if restart is None:
            self.epoch_rng = {
                "loader": self.generator.get_state(),
                "augment": checkpoint.augment_rng_state(self.augment),
            }
            return EpochStart(iter(self.loader), 0)
        self.epoch_rng = dict(restart.epoch_start_rng)
        self.generator.set_state(self.epoch_rng["loader"])
        set_augment_rng(self.augment, self.epoch_rng["augment"], restart.path)
        batches = iter(self.loader)
        for _ in range(restart.batch):  # replay the draws of the batches already trained
            next(batches)
        checkpoint.set_global_rng_state(restart.global_rng)
        return EpochStart(batches, restart.batch)
