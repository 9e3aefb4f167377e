"""Writing a run's checkpoints while it trains.

``CheckpointWriter`` knows what ``last`` (everything a resume needs) and ``best`` (the best
validated epoch's weights and Dice) hold. It copies that to the CPU on the training thread,
so the next epoch may change the model freely, and hands the copy to a
``BackgroundWriter``, so training does not wait for the disk. The files and their layout
are ``harness.engine.checkpoint``'s.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.engine import checkpoint
from harness.engine.state import TrainingState
from harness.engine.step import TrainStep


class BackgroundWriter:
    """Runs one job at a time on a thread (a checkpoint write), so training goes on meanwhile.

    ``submit`` first waits for the job before; ``wait`` blocks until the job is done and
    re-raises its error. A kill during a write leaves the previous checkpoint, as every
    write is atomic. Leaving the ``with`` block waits; when it is left on an error, a job's
    error is dropped so that the first error is the one raised.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, job: Callable[[], None]) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(job,), daemon=True)
        self._thread.start()

    def _run(self, job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # handed to the training thread by wait()
            self._error = exc

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.wait()
            return
        with contextlib.suppress(Exception):  # already failing: keep that error, not this one
            self.wait()


def cpu_copy(value: Any) -> Any:
    """Tensors copied to the CPU (training goes on changing the originals), containers rebuilt."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: cpu_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [cpu_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(cpu_copy(v) for v in value)
    return value


def state_of(component: Any, noun: str, name: str) -> dict[str, Any]:
    """A component's ``state_dict()``, refused early if a checkpoint could not hold it."""
    state = component.state_dict()
    checkpoint.check_plain(state, f"{noun} '{name}'")
    return state


@dataclass
class Checkpointed:
    """What a checkpoint holds besides the training state: the components and generators."""

    model: torch.nn.Module  # the plain module (not a data-parallel or compiled wrapper)
    step: TrainStep  # its optimizer, scheduler, grad scaler and micro-batch
    generator: torch.Generator  # the loader's
    augment: Any
    optimizer_name: str  # the plugins' names, for a state_dict that cannot be saved
    scheduler_name: str


class CheckpointWriter:
    """Saves ``last`` (and ``best``) of one run into ``folder``; with no folder, saves nothing.

    ``run_id`` goes into every checkpoint (a resume must match it) and ``extra_state``
    (plain values, the caller's) into every ``last`` as it is.
    """

    def __init__(
        self,
        folder: Path | None,
        parts: Checkpointed,
        run_id: Mapping[str, Any] | None = None,
        extra_state: Mapping[str, Any] | None = None,
    ) -> None:
        self.folder = folder
        self.parts = parts
        self.run_id = dict(run_id or {})
        self.extra_state = dict(extra_state or {})
        self.background = BackgroundWriter()

    def snapshot(
        self,
        state: TrainingState,
        epoch_rng: Mapping[str, Any] | None,
        global_rng: Mapping[str, Any] | None = None,
        running_by_rank: list[float] | None = None,
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """CPU copies of the weights and of everything else ``last`` holds, taken now.

        Part-way through an epoch (``state.batch``), ``epoch_rng`` (the random state at the
        epoch's start) lets a resume replay the epoch's draws, and ``running_by_rank`` holds
        each rank's part-epoch loss sum. ``global_rng`` is the global random state to save
        (default: now's).
        """
        parts, mid_epoch = self.parts, bool(state.batch)
        saved = {
            **self.extra_state,
            "run": dict(self.run_id),
            **state.to_state(),
            "optimizer": state_of(parts.step.optimizer, "optimizer", parts.optimizer_name),
            "scheduler": state_of(parts.step.scheduler, "scheduler", parts.scheduler_name),
            "scaler": parts.step.scaler.state_dict(),
            "rng": {
                "global": dict(global_rng or checkpoint.global_rng_state()),
                "loader": parts.generator.get_state(),
                "augment": checkpoint.augment_rng_state(parts.augment),
            },
            "epoch_start_rng": dict(epoch_rng) if mid_epoch and epoch_rng is not None else None,
            "micro_batch": parts.step.micro_batch,
            "running_by_rank": running_by_rank if mid_epoch else None,
        }
        return cpu_copy(parts.model.state_dict()), cpu_copy(saved)

    def save_now(
        self,
        state: TrainingState,
        epoch_rng: Mapping[str, Any] | None,
        global_rng: Mapping[str, Any] | None = None,
        running_by_rank: list[float] | None = None,
    ) -> Path | None:
        """Write ``last`` before returning (a stop); the path of its state file."""
        if self.folder is None:
            return None
        self.background.wait()
        weights, saved = self.snapshot(state, epoch_rng, global_rng, running_by_rank)
        return checkpoint.save(self.folder, "last", weights, saved)

    def save_epoch_end(self, state: TrainingState, improved: bool) -> Path | None:
        """``last`` (and ``best`` when ``improved``) of the epoch just finished, written while
        training goes on; the path ``last``'s state file will have."""
        if self.folder is None:
            return None
        folder = self.folder
        weights, saved = self.snapshot(state, None)
        best = {
            "run": dict(self.run_id),
            "epoch": state.epoch,
            "mean_dice": state.best_dice,
            "per_class_dice": dict(state.best_per_class),
        }

        def write() -> None:
            blob = checkpoint.weights_bytes(weights)
            checkpoint.save(folder, "last", blob, saved)
            if improved:
                checkpoint.save(folder, "best", blob, best)

        self.background.submit(write)
        return checkpoint.paths(folder, "last")[0]

    def wait(self) -> None:
        """Until what was submitted is on disk; re-raises a write's error."""
        self.background.wait()

    def __enter__(self) -> CheckpointWriter:
        self.background.__enter__()
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        self.background.__exit__(kind, *rest)
