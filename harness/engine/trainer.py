"""The standard training protocol: one entry, one seed, one benchmark.

Everything that makes runs comparable is fixed here or by the protocol: seeding,
precision (by default AMP on CUDA — bf16 where supported, else fp16 with a grad scaler —
and fp32 on CPU; ``Execution.precision`` is another, recorded), the split, the
validation schedule and the metric. The final epoch's Dice is what the leaderboard ranks;
the best epoch is recorded apart.

Runs are long, so training never loses more than an epoch: a checkpoint is written at
the end of every epoch (``harness.engine.writer``), a Ctrl-C stops at the next step boundary
and saves one mid-epoch (``harness.engine.control``), and a resumed run replays the
interrupted epoch's data draws (``harness.engine.resume``) so that it ends with exactly the
result of a run left alone. A plugin that breaks the contract (a factory that raises, a
model whose output has the wrong shape, a loss that is not a scalar) is a one-line error
naming it; a run that goes wrong (non-finite loss, out of memory, any exception) is a
``RunFailed`` saying where and what to try (``harness.engine.failures``).

``Trainer.run`` is the protocol itself; what cuts across it (checkpoints, Ctrl-C, rank
agreement, the out-of-memory fallback, resuming) lives in collaborators it holds, and what
it reports goes to a ``TrainObserver`` (``harness.engine.events``).
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import torch

from harness.engine import checkpoint, distributed
from harness.engine.build import Execution, Recipe, RunSpec, Setup, build_setup, make_train_step
from harness.engine.checkpoint import Checkpoint
from harness.engine.control import Interrupted, StopAgreement, StopOnCtrlC, StopRequested
from harness.engine.device import device_name, peak_memory_mb
from harness.engine.events import NullObserver, TrainObserver
from harness.engine.failures import Where, explained, not_finite
from harness.engine.inference import evaluate
from harness.engine.loader import global_batch
from harness.engine.oom import OutOfMemoryFallback
from harness.engine.resume import EpochDraws, Resumed, resume
from harness.engine.state import TrainingState
from harness.engine.throughput import StepWindow
from harness.engine.writer import Checkpointed, CheckpointWriter
from harness.errors import RunFailed
from harness.metric.dice import DiceAccumulator
from harness.protocol import Protocol

__all__ = [
    "Checkpointing",
    "Execution",
    "Interrupted",
    "Recipe",
    "RunSpec",
    "TrainResult",
    "Trainer",
    "make_train_step",
    "train",
]

#: On a GPU, the loss is read back (and checked) every this many steps, not every step.
_SYNC_EVERY = 16

_STOPPING = "Stopping after this step to save a checkpoint (Ctrl-C again stops at once)"


def unit_of(protocol: Protocol, seed: int) -> str:
    """What a run is called to the user: ``seed 0``, or ``fold 2 seed 0`` for a fold of a
    cross-validated benchmark (its protocol's ``cv_folds``, validated on ``fold``)."""
    return f"fold {protocol.fold} seed {seed}" if protocol.cv_folds else f"seed {seed}"


@dataclass
class TrainResult:
    """What a finished run measured; ``mean_dice``/``per_class_dice`` are the final epoch's."""

    mean_dice: float
    per_class_dice: dict[str, float]
    per_image_dice: list[list[float]]
    val_images: list[str]
    best_epoch: int
    best_mean_dice: float
    best_per_class_dice: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    parameters: int = 0
    #: The whole run's images over its time in training steps (the run's wall time).
    train_images_per_s: float = 0.0
    #: The timed window's figure and the machine then (``harness.engine.throughput``).
    train_window: dict[str, Any] | None = None
    peak_memory_mb: float = 0.0
    wall_s: float = 0.0
    device: str = "cpu"
    model: torch.nn.Module | None = None
    #: How the run executed (never part of the protocol): micro-batch, processes, compile.
    execution: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpointing:
    """Where a run keeps its checkpoints and what it continues from.

    ``folder`` receives ``last`` at the end of every epoch and on a stop (``best`` too when
    validation improves); None: no checkpoints (a data-parallel run's other ranks).
    ``resume_from`` continues such a checkpoint, whose ``run_id`` must match this one's;
    ``run_id`` is stored in each checkpoint, and ``extra_state`` (plain values) in each
    ``last``, as it is, for the caller to read back.
    """

    folder: Path | None = None
    resume_from: Checkpoint | None = None
    run_id: Mapping[str, Any] | None = None
    extra_state: Mapping[str, Any] | None = None


class _UnreadLosses:
    """Batch losses left on the device until read back: reading makes the host wait for the
    device, so every step on a CPU (where it costs nothing), every few steps on a GPU."""

    def __init__(self, every: int) -> None:
        self.every = every
        self._sum: torch.Tensor | None = None

    def add(self, loss: torch.Tensor) -> None:
        self._sum = loss if self._sum is None else self._sum + loss

    def due(self, done: int, last: bool) -> bool:
        return done % self.every == 0 or last

    def read(self) -> float:
        """The sum of the losses added since the last read."""
        assert self._sum is not None
        value, self._sum = self._sum.item(), None
        return value

    def flush(self) -> float:
        return 0.0 if self._sum is None else self.read()


class Trainer:
    """One run's training: its state, its components (``setup``) and the collaborators that
    checkpoint it (as ``checkpointing`` says), stop it, resume it and keep its first step
    within memory.
    """

    def __init__(
        self,
        setup: Setup,
        *,
        observer: TrainObserver | None = None,
        checkpointing: Checkpointing = Checkpointing(),
        started: float | None = None,
    ) -> None:
        self.setup = setup
        self.observer: TrainObserver = observer or NullObserver()
        self.started = time.perf_counter() if started is None else started
        resumed = self._resume(checkpointing.resume_from, checkpointing.run_id)
        self.state: TrainingState = resumed.state
        self.wall_before = self.state.wall_s  # spent by earlier sessions
        self.draws = EpochDraws(setup.loader, setup.generator, setup.augment, resumed.restart)
        names = (setup.entry.optimizer.name, setup.entry.scheduler.name)
        parts = Checkpointed(setup.model, setup.step, setup.generator, setup.augment, *names)
        self.checkpoints = CheckpointWriter(
            checkpointing.folder, parts, checkpointing.run_id, checkpointing.extra_state
        )
        # torchrun answers Ctrl-C by sending its workers SIGTERM: stop as cleanly on that.
        signals = (signal.SIGINT, signal.SIGTERM) if setup.world.active else (signal.SIGINT,)
        self.stop = StopOnCtrlC(lambda: self.observer.message(_STOPPING), signals=signals)
        self.agreement = StopAgreement(setup.world, setup.device)
        automatic = setup.micro_batch is None and not setup.world.active
        self.step = OutOfMemoryFallback(setup.step, automatic=automatic, say=self.observer.message)
        self.where = Where(self.state.epoch + 1)  # for the message of a failure
        self.scores: DiceAccumulator | None = None  # the last validation's
        self.images_per_s = 0.0  # the last epoch's training throughput
        self.window = self._window()  # this session's timed steps, unless a window is done
        self.running_by_rank: list[float] | None = None  # each rank's, at a mid-epoch stop

    def _window(self) -> StepWindow:
        """The steps this session times (none when an earlier session's window is complete)."""
        setup = self.setup
        left = setup.protocol.epochs * setup.steps_per_epoch - self.state.step
        if self.state.window is not None:
            left = 0
        return StepWindow.for_session(setup.device, setup.concurrent_runs, left)

    def _resume(self, ckpt: Checkpoint | None, run_id: Mapping[str, Any] | None) -> Resumed:
        if ckpt is None:
            return Resumed(TrainingState(), None)
        setup = self.setup
        return resume(
            ckpt,
            run_id,
            setup.model,
            setup.step,
            setup.generator,
            setup.augment,
            setup.world,
            automatic_micro_batch=setup.micro_batch is None,
        )

    # -- the protocol -----------------------------------------------------------------------

    def run(self) -> TrainResult:
        """Each remaining epoch trains, is validated when due and ends in a checkpoint; a
        stop request ends training at the next safe point with ``Interrupted``."""
        self.on_train_start()
        try:
            with self.stop, self.checkpoints, explained(self.where, self.setup.device):
                for epoch in range(self.state.epoch + 1, self.setup.protocol.epochs + 1):
                    loss = self.train_epoch(epoch)
                    scores = self.validate(epoch)
                    self.end_epoch(epoch, loss, scores)
                self.on_train_end()
        finally:
            self.observer.run_ended()
        return self.result()

    def on_train_start(self) -> None:
        total = self.setup.protocol.epochs * self.setup.steps_per_epoch
        self.observer.run_started(
            unit_of(self.setup.protocol, self.setup.seed), total, self.state.step
        )

    def train_epoch(self, epoch: int) -> float:
        """The epoch's steps (those left, after a mid-epoch restart); its mean batch loss."""
        self.where.start_of_epoch(epoch)
        self.setup.model.train()
        start = self.draws.start()
        self.state.batch = start.done
        if not start.done:
            self.state.running = 0.0
        losses = _UnreadLosses(_SYNC_EVERY if self.setup.device.type == "cuda" else 1)
        seen, began = self.state.seen, time.perf_counter()
        for inputs, targets in start.batches:
            bad = self._train_batch(epoch, inputs, targets, losses)
            if self.agreement.stop_here(self.stop.requested, bad, self.state.step, epoch):
                self._stop_mid_epoch(epoch, losses, began)
        spent = time.perf_counter() - began
        self.state.train_time += spent
        self.images_per_s = (self.state.seen - seen) / spent if spent > 0 else 0.0
        self._keep_window(final=False)
        return self._epoch_loss()

    def validate(self, epoch: int) -> DiceAccumulator | None:
        """The epoch's validation Dice when the protocol validates this epoch, else None.

        The global random state is taken before validation: a stop during it saves that
        state, and the resume redoes the validation.
        """
        protocol = self.setup.protocol
        if epoch % protocol.val_interval != 0 and epoch != protocol.epochs:
            return None
        before = checkpoint.global_rng_state()
        self.where.validation(epoch)
        self.observer.validating(epoch, protocol.epochs)
        # Ranks validate different numbers of batches: only agree at the end.
        should_stop = None if self.setup.world.active else lambda: self.stop.requested
        try:
            scores = self._evaluate(should_stop)
        except StopRequested:
            saved = self._save_now(global_rng=before)
            raise Interrupted(saved, f"epoch {epoch}, during validation") from None
        self.observer.validated(epoch, self.state.step, self.setup.model)
        return scores

    def end_epoch(self, epoch: int, loss: float, scores: DiceAccumulator | None) -> None:
        """Record the epoch, report it, checkpoint it (``best`` too if it improved), honour a
        stop. The observer hears the epoch first, so what it writes (``metrics.jsonl``) is on
        disk before a checkpoint says the epoch is done: a kill between the two leaves an
        epoch the resume trains again, never a gap."""
        state = self.state
        lr = self.setup.step.optimizer.param_groups[0]["lr"]
        record: dict[str, float] = {"epoch": epoch, "loss": loss, "lr": lr}
        improved = False
        if scores is not None:
            self.scores = scores
            record["val_mean_dice"] = scores.mean()
            improved = state.record_validation(epoch, scores.mean(), scores.per_class())
        state.history.append(record)
        state.epoch, state.batch = epoch, 0
        self.where.checkpoint(epoch)
        state.wall_s = self._wall_s()
        self.observer.epoch_done(self._metrics(record, scores))
        saved = self.checkpoints.save_epoch_end(state, improved)
        if self.agreement.agreed(self.stop.requested):
            self.checkpoints.wait()
            raise Interrupted(saved, f"the end of epoch {epoch}")

    def on_train_end(self) -> None:
        """Score the model if no epoch was left to train (resumed from the final epoch's
        checkpoint); the final checkpoint is on disk before the record says succeeded."""
        self._keep_window(final=True)
        if self.scores is None:
            self.where.final_validation()
            self.scores = self._evaluate()
        self.where.checkpoint(self.state.epoch)
        self.checkpoints.wait()

    def result(self) -> TrainResult:
        setup, state, scores = self.setup, self.state, self.scores
        assert scores is not None
        name = device_name(setup.device)
        return TrainResult(
            mean_dice=scores.mean(),
            per_class_dice=scores.per_class(),
            per_image_dice=scores.per_image().tolist(),
            val_images=[p.name for p in setup.val_set.paths],
            best_epoch=state.best_epoch,
            best_mean_dice=state.best_dice,
            best_per_class_dice=state.best_per_class,
            history=state.history,
            parameters=setup.parameters,
            train_images_per_s=state.seen / state.train_time if state.train_time else 0.0,
            train_window=state.window,
            peak_memory_mb=peak_memory_mb(setup.device),
            wall_s=self._wall_s(),
            device=f"{setup.world.size} × {name}" if setup.world.active else name,
            model=setup.model,
            execution={
                "micro_batch": setup.step.micro_batch,
                "processes": setup.world.size,
                "compile": bool(setup.compile),
                "precision": setup.step.placement.precision.name,
            },
        )

    # -- inside an epoch --------------------------------------------------------------------

    def _train_batch(
        self, epoch: int, inputs: torch.Tensor, targets: torch.Tensor, losses: _UnreadLosses
    ) -> float | None:
        """One step; returns this rank's loss if it is not finite in a data-parallel run."""
        setup, state = self.setup, self.state
        self.where.step(state.step + 1, epoch)
        n = global_batch(len(setup.train_set), setup.protocol.batch_size, state.batch + 1)
        # DDP averages the ranks' gradients; weighting each by its share of the global
        # batch makes that the global batch's mean when shares differ.
        share = inputs.shape[0] * setup.world.size / n if setup.world.active else 1.0
        with self.window.step(n):
            loss = self.step(inputs, targets, share)
        state.step += 1
        state.batch += 1
        state.seen += n
        losses.add(loss)
        if not losses.due(state.batch, state.batch == setup.steps_per_epoch):
            return None
        value = losses.read()
        if math.isfinite(value):
            state.running += value
            self.observer.step_done(state.step, epoch, setup.protocol.epochs, loss.item())
            return None
        if not setup.world.active:
            raise RunFailed(not_finite(value, state.step, epoch, setup.device))
        return value

    def _stop_mid_epoch(self, epoch: int, losses: _UnreadLosses, began: float) -> NoReturn:
        """Every rank stops after this step: save ``last`` where the epoch stands, and raise."""
        state, world = self.state, self.setup.world
        state.running += losses.flush()
        state.train_time += time.perf_counter() - began
        if world.active:  # every rank is here, at the same step
            self.running_by_rank = distributed.gather_objects(state.running, world)
        where = f"epoch {epoch}, batch {state.batch} of {self.setup.steps_per_epoch}"
        raise Interrupted(self._save_now(), where)

    def _keep_window(self, final: bool) -> None:
        """The timed window into the state once it is complete (saved with the next
        checkpoint); at the end of training, whatever it timed."""
        if self.state.window is None and (final or self.window.ended is not None):
            self.state.window = self.window.result()

    def _epoch_loss(self) -> float:
        """The epoch's mean batch loss; on several ranks, the mean over ranks of theirs."""
        total, world = self.state.running, self.setup.world
        if world.active:
            total = sum(distributed.gather_objects(total, world)) / world.size
        return total / self.setup.steps_per_epoch

    def _evaluate(self, should_stop: Callable[[], bool] | None = None) -> DiceAccumulator:
        setup = self.setup
        return evaluate(
            setup.model,
            setup.val_set,
            setup.protocol,
            setup.step.placement,
            should_stop=should_stop,
            tta=setup.tta,
            world=setup.world,
        )

    def _save_now(self, global_rng: Mapping[str, Any] | None = None) -> Path | None:
        """``last`` as training stands now (a stop), on disk before returning."""
        self.state.wall_s = self._wall_s()
        epoch_rng = self.draws.epoch_rng
        return self.checkpoints.save_now(self.state, epoch_rng, global_rng, self.running_by_rank)

    def _wall_s(self) -> float:
        return self.wall_before + time.perf_counter() - self.started

    def _metrics(
        self, record: Mapping[str, float], scores: DiceAccumulator | None
    ) -> dict[str, Any]:
        """What ``epoch_done`` hears: the history record, the step, the epoch's throughput,
        the run's wall time and per-class Dice."""
        metrics: dict[str, Any] = {
            **record,
            "step": self.state.step,
            "images_per_s": self.images_per_s,
            "wall_s": self.state.wall_s,
        }
        if scores is not None:
            metrics["val_per_class_dice"] = scores.per_class()
        return metrics


def train(
    run: RunSpec,
    execution: Execution,
    *,
    observer: TrainObserver | None = None,
    checkpointing: Checkpointing = Checkpointing(),
) -> TrainResult:
    """Train one entry with one seed under its protocol (``run``); evaluate on the run's
    validation images.

    With a checkpoints folder (``checkpointing``), the state is saved there at the end of
    every epoch (``last``, and ``best`` when validation improves) and on Ctrl-C, which then
    raises ``Interrupted``; ``checkpointing.resume_from`` continues from such a checkpoint.

    ``execution.micro_batch`` splits each batch for gradient accumulation (None: whole
    batches, and after an out-of-memory error on the first step, halves until one fits);
    ``execution.compile`` runs the training step through ``torch.compile``.
    ``execution.world`` (``harness.engine.distributed``) makes this one rank of a
    data-parallel run: the batch is shared out, gradients are all-reduced, validation is
    sharded and gathered, and only the main rank should be given a checkpoints folder.
    Progress and messages go to ``observer`` (default: nowhere).
    """
    started = time.perf_counter()
    setup = build_setup(run, execution)
    trainer = Trainer(setup, observer=observer, checkpointing=checkpointing, started=started)
    return trainer.run()
