"""The standard training protocol: one entry, one seed, one benchmark.

Everything that makes runs comparable is fixed here or by the protocol: seeding,
precision (AMP on CUDA — bf16 where supported, else fp16 with a grad scaler — and
fp32 on CPU), the split, the validation schedule and the metric. The final epoch's
Dice is what the leaderboard ranks; the best epoch is recorded apart.

Runs are long, so training never loses more than an epoch: a checkpoint is written at
the end of every epoch (``harness.engine.checkpoint``), a Ctrl-C stops at the next step boundary
and saves one mid-epoch, and a resumed run replays the interrupted epoch's data draws so
that it ends with exactly the result of a run left alone. A plugin that breaks the
contract (a factory that raises, a model whose output has the wrong shape, a loss that
is not a scalar) is a one-line error naming it; a run that goes wrong (non-finite loss,
out of memory, any exception) is a ``RunFailed`` saying where and what to try.
"""

from __future__ import annotations

import contextlib
import math
import random
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch.utils.data import DataLoader, Dataset, Subset

from harness.classes import CLASSES
from harness.components.contracts import build_components, check_logits, check_loss
from harness.components.entry import Entry
from harness.components.registry import Registry
from harness.data.datasets import EvalDataset, TrainDataset
from harness.engine import checkpoint, distributed
from harness.engine.checkpoint import Checkpoint, CheckpointError
from harness.engine.distributed import ShardedBatchSampler, World
from harness.engine.step import TrainStep, autocast
from harness.errors import HarnessError, RunFailed, one_line
from harness.metric.dice import DiceAccumulator
from harness.protocol import Protocol


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
    train_images_per_s: float = 0.0
    peak_memory_mb: float = 0.0
    wall_s: float = 0.0
    device: str = "cpu"
    model: torch.nn.Module | None = None
    #: How the run executed (never part of the protocol): micro-batch, processes, compile.
    execution: dict[str, Any] = field(default_factory=dict)


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise HarnessError("--device cuda: no CUDA device is available here; use --device cpu")
    if choice not in ("cpu", "cuda"):
        raise HarnessError(f"--device {choice!r}: choose auto, cpu or cuda")
    return torch.device(choice)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def amp_dtype(protocol: Protocol, device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16; None (fp32) on CPU or if the protocol says no."""
    if not protocol.amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


#: On a GPU, the loss is read back (and checked) every this many steps, not every step.
_SYNC_EVERY = 16


def _global_batch(n: int, batch_size: int, done: int) -> int:
    """Images in the ``done``-th global batch of an epoch over ``n`` images (the last is short)."""
    return min(batch_size, n - (done - 1) * batch_size)


class _Keyed(Dataset):
    """Training samples addressed by ``(index, epoch_seed)``: each draws its own augmentation.

    The augmentation's random state is set from the epoch's seed and the sample's index
    before each sample, so what a sample looks like depends on neither the loader worker
    nor the rank that happens to load it, and persistent workers need no reseeding.
    """

    def __init__(self, dataset: TrainDataset) -> None:
        self.dataset = dataset
        self.augment = dataset.augment

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, epoch_seed = key
        if hasattr(self.augment, "set_random_seed"):
            state = np.random.SeedSequence([epoch_seed, index]).generate_state(1)[0]
            self.augment.set_random_seed(int(state))
        return self.dataset[index]


class _KeyedBatches(torch.utils.data.Sampler):
    """A batch sampler's batches as ``(index, epoch_seed)`` keys, one seed drawn per epoch."""

    def __init__(self, batches: ShardedBatchSampler, generator: torch.Generator) -> None:
        self.batches = batches
        self.generator = generator

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        # One int64 then the permutation: the draws, in order, of a shuffled DataLoader
        # (its workers' base seed, then RandomSampler's), so un-augmented runs train on
        # exactly the batches of the loader this harness used before, and results do not
        # depend on the number of workers or processes.
        epoch_seed = int(torch.empty((), dtype=torch.int64).random_(generator=self.generator))
        for batch in self.batches:
            yield [(index, epoch_seed) for index in batch]


def make_train_loader(
    dataset: TrainDataset,
    protocol: Protocol,
    device: torch.device,
    generator: torch.Generator,
    world: World | None = None,
    *,
    seed: int = 0,
) -> DataLoader:
    """The training loader: shuffled by ``generator``, batches of the protocol's size.

    Batches come from a ``ShardedBatchSampler`` (on several processes each rank gets its
    part of every global batch), keyed by a per-epoch seed from which each sample draws
    its augmentation; workers persist across epochs and memory is pinned on CUDA. All the
    randomness follows from ``generator``, which checkpoints restore.
    """
    world = world or World()
    pin = device.type == "cuda"
    workers = protocol.num_workers
    batches = ShardedBatchSampler(len(dataset), protocol.batch_size, world, generator)
    return DataLoader(
        _Keyed(dataset),
        batch_sampler=_KeyedBatches(batches, generator),
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=workers > 0,
        worker_init_fn=_worker_init,
        # The loader draws its workers' base seed from its own generator, not the one that
        # shuffles, so the shuffle does not depend on when workers start.
        generator=torch.Generator().manual_seed(seed),
    )


class Interrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C; ``checkpoint`` is the state file it saved (None: none)."""

    def __init__(self, checkpoint: Path | None, where: str) -> None:
        super().__init__(f"stopped at {where}")
        self.checkpoint = checkpoint
        self.where = where


class _StopRequested(Exception):
    """Raised inside validation when a Ctrl-C asked training to stop."""


class _StopOnCtrlC:
    """While active, the first Ctrl-C asks training to stop at the next safe point.

    A step is never cut in half (the optimizer could be half-way through its update), so
    the request is honoured between steps, where a checkpoint is consistent. A second
    Ctrl-C interrupts at once, keeping the last checkpoint written.
    """

    def __init__(
        self,
        on_request: Callable[[], None] | None = None,
        signals: Sequence[signal.Signals] = (signal.SIGINT,),
    ) -> None:
        self.requested = False
        self._on_request = on_request
        self._signals = tuple(signals)
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> _StopOnCtrlC:
        if threading.current_thread() is threading.main_thread():
            for sig in self._signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._on_request is not None:
            with contextlib.suppress(Exception):
                self._on_request()

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}


@dataclass
class _Counters:
    """Where training stands: everything besides the components that a checkpoint carries."""

    epoch: int = 0  # epochs completed
    batch: int = 0  # batches done in epoch ``epoch + 1`` (mid-epoch checkpoints)
    step: int = 0
    seen: int = 0
    train_time: float = 0.0
    wall_s: float = 0.0  # spent by earlier sessions of this run
    running: float = 0.0  # sum of this epoch's batch losses
    history: list[dict[str, float]] = field(default_factory=list)
    best_dice: float = -1.0
    best_epoch: int = 0
    best_per_class: dict[str, float] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
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
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> _Counters:
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
        )


def make_train_step(
    model: torch.nn.Module,
    loss_fn: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    protocol: Protocol,
    entry: Entry,
    registry: Registry,
    device: torch.device,
    micro_batch: int | None = None,
) -> TrainStep:
    """The protocol's training step for these components, exactly as ``train`` runs it.

    Precision (``amp_dtype``; a grad scaler only for fp16), memory format, gradient
    clipping, and the plugin contract checks on the first batch naming ``entry``'s plugins.
    """
    dtype = amp_dtype(protocol, device)
    return TrainStep(
        model,
        loss_fn,
        optimizer,
        scheduler,
        device=device,
        dtype=dtype,
        scaler=torch.amp.GradScaler("cuda", enabled=dtype == torch.float16),
        grad_clip=protocol.grad_clip,
        micro_batch=micro_batch,
        memory_format=torch.channels_last if protocol.channels_last else torch.contiguous_format,
        check_logits=lambda logits, inputs: check_logits(logits, inputs, entry, registry),
        check_loss=lambda loss: check_loss(loss, entry, registry),
    )


def train(
    protocol: Protocol,
    entry: Entry,
    registry: Registry,
    *,
    seed: int,
    train_images: Sequence[Path],
    val_images: Sequence[Path],
    device: torch.device,
    console: Console | None = None,
    checkpoints: Path | None = None,
    resume_from: Checkpoint | None = None,
    run_id: Mapping[str, Any] | None = None,
    extra_state: Mapping[str, Any] | None = None,
    micro_batch: int | None = None,
    compile: bool = False,
    world: World | None = None,
) -> TrainResult:
    """Train one entry with one seed under ``protocol``; evaluate on ``val_images``.

    With ``checkpoints`` (a folder), the state is saved there at the end of every epoch
    (``last``, and ``best`` when validation improves) and on Ctrl-C, which then raises
    ``Interrupted``. ``resume_from`` continues from such a checkpoint; ``run_id`` is stored
    in each checkpoint and must match the one being resumed; ``extra_state`` (plain values)
    is stored in each ``last`` checkpoint as it is, for the caller to read back.

    ``micro_batch`` splits each batch for gradient accumulation (None: whole batches, and
    after an out-of-memory error on the first step, halves until one fits); ``compile``
    runs the training step through ``torch.compile``. ``world`` (``harness.engine.distributed``)
    makes this one rank of a data-parallel run: the batch is shared out, gradients are
    all-reduced, validation is sharded and gathered, and only the main rank should be
    given ``checkpoints``.
    """
    console = console or Console(stderr=True)
    world = world or World()
    started = time.perf_counter()
    seed_everything(seed)
    steps_per_epoch = max(1, math.ceil(len(train_images) / protocol.batch_size))
    model, loss_fn, optimizer, scheduler, augment = build_components(
        protocol, entry, registry, steps_per_epoch
    )
    if hasattr(augment, "set_random_seed"):
        # albumentations 2.x keeps its own random state, independent of the global seeds.
        augment.set_random_seed(seed)
    memory_format = torch.channels_last if protocol.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    if device.type == "cuda":
        # Every batch has the protocol's shape: let cuDNN time its kernels once and keep the
        # fastest (GPU runs are not bit-reproducible anyway; CPU runs are, and unaffected).
        torch.backends.cudnn.benchmark = True
    parameters = sum(p.numel() for p in model.parameters())

    train_set = TrainDataset(train_images, protocol.resolution, augment)
    generator = torch.Generator().manual_seed(seed)
    loader = make_train_loader(train_set, protocol, device, generator, world, seed=seed)
    val_set = EvalDataset(val_images, protocol.resolution)
    step_model: torch.nn.Module = model
    if world.active:
        from torch.nn.parallel import DistributedDataParallel

        step_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if compile:
        step_model = torch.compile(step_model)
    train_step = make_train_step(
        step_model, loss_fn, optimizer, scheduler, protocol, entry, registry, device, micro_batch
    )
    scaler, dtype = train_step.scaler, train_step.dtype
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    counters = _Counters()
    pending: Mapping[str, Any] | None = None  # a mid-epoch checkpoint, replayed at its epoch
    if resume_from is not None:
        _restore(resume_from, run_id, model, optimizer, scheduler, scaler)
        if micro_batch is None and resume_from.state.get("micro_batch"):
            # The size an earlier session fell back to after running out of memory.
            train_step.micro_batch = int(resume_from.state["micro_batch"])
        counters = _Counters.from_state(resume_from.state)
        by_rank = resume_from.state.get("running_by_rank")
        if world.active and isinstance(by_rank, list) and len(by_rank) == world.size:
            counters.running = float(by_rank[world.rank])
        rng = resume_from.state["rng"]
        if counters.batch:
            pending = resume_from.state
        else:
            checkpoint.set_global_rng_state(rng["global"])
            generator.set_state(rng["loader"])
            _set_augment_rng(augment, rng["augment"], resume_from.path)

    def snapshot(
        batch: int,
        epoch_rng: Mapping[str, Any] | None,
        global_rng: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Copies (on the CPU) of everything ``last`` holds, taken now, for writing later."""
        counters.batch = batch
        counters.wall_s = wall_before + time.perf_counter() - started
        state = {
            **dict(extra_state or {}),
            "run": dict(run_id or {}),
            **counters.to_state(),
            "optimizer": _state_of(optimizer, "optimizer", entry.optimizer.name),
            "scheduler": _state_of(scheduler, "scheduler", entry.scheduler.name),
            "scaler": scaler.state_dict(),
            "rng": {
                "global": dict(global_rng or checkpoint.global_rng_state()),
                "loader": generator.get_state(),
                "augment": checkpoint.augment_rng_state(augment),
            },
            "epoch_start_rng": dict(epoch_rng) if batch and epoch_rng is not None else None,
            "micro_batch": train_step.micro_batch,
            # Each rank's part-epoch loss sum (mid-epoch stops of a data-parallel run).
            "running_by_rank": running_by_rank if batch else None,
        }
        return _cpu_copy(model.state_dict()), _cpu_copy(state)

    def save_last_now(
        batch: int,
        epoch_rng: Mapping[str, Any] | None,
        global_rng: Mapping[str, Any] | None = None,
    ) -> Path | None:
        if checkpoints is None:
            return None
        writer.wait()
        weights, state = snapshot(batch, epoch_rng, global_rng)
        return checkpoint.save(checkpoints, "last", weights, state)

    def save_epoch_end(improved: bool) -> Path | None:
        """``last`` (and ``best``) of the epoch just finished, written while training goes on."""
        if checkpoints is None:
            return None
        weights, state = snapshot(0, None)
        best = {
            "run": dict(run_id or {}),
            "epoch": counters.epoch,
            "mean_dice": counters.best_dice,
            "per_class_dice": dict(counters.best_per_class),
        }

        def write() -> None:
            blob = checkpoint.weights_bytes(weights)
            checkpoint.save(checkpoints, "last", blob, state)
            if improved:
                checkpoint.save(checkpoints, "best", blob, best)

        writer.submit(write)
        return checkpoint.paths(checkpoints, "last")[0]

    wall_before = counters.wall_s
    first_step = counters.step
    running_by_rank: list[float] | None = None

    def agreed(flag: bool) -> bool:
        """``flag`` on one rank is ``flag`` on all: every rank stops at the same step."""
        return distributed.agree_any(flag, world) if world.active else flag

    def run_step(inputs: torch.Tensor, targets: torch.Tensor, share: float) -> torch.Tensor:
        """One step; out of memory on this process's first step halves the micro-batch."""
        while True:
            try:
                return train_step(inputs, targets, share)
            except torch.OutOfMemoryError:
                size = train_step.micro_batch or inputs.shape[0]
                # Only automatic, on one process, before anything was learnt: a rank that
                # changed its micro-batch alone would no longer match the others' steps.
                if micro_batch is not None or world.active or counters.step != first_step:
                    raise
                if size <= 1:
                    raise
            optimizer.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            train_step.micro_batch = size // 2
            console.print(
                f"out of memory on the first step with batches of {inputs.shape[0]}: "
                f"retrying with micro-batches of {size // 2} (gradient accumulation, same "
                "protocol; recorded with the run)",
                markup=False,
                highlight=False,
            )

    last: DiceAccumulator | None = None
    total_steps = protocol.epochs * steps_per_epoch
    epoch = counters.epoch + 1
    phase = f"the start of epoch {epoch}"  # where a failure happened, for its message
    writer = _BackgroundWriter()
    stop = _StopOnCtrlC(
        lambda: console.print(
            "Stopping after this step to save a checkpoint (Ctrl-C again stops at once)"
        ),
        # torchrun answers Ctrl-C by sending its workers SIGTERM: stop as cleanly on that.
        signals=(signal.SIGINT, signal.SIGTERM) if world.active else (signal.SIGINT,),
    )
    with _progress(console) as progress, stop, writer:
        task = progress.add_task(
            f"seed {seed}", total=total_steps, completed=counters.step, info=""
        )
        try:
            for epoch in range(counters.epoch + 1, protocol.epochs + 1):
                model.train()
                if pending is not None:
                    epoch_rng = pending["epoch_start_rng"]
                    generator.set_state(epoch_rng["loader"])
                    _set_augment_rng(augment, epoch_rng["augment"], resume_from.path)
                else:
                    epoch_rng = {
                        "loader": generator.get_state(),
                        "augment": checkpoint.augment_rng_state(augment),
                    }
                    counters.running = 0.0
                batches: Iterator = iter(loader)
                done = 0
                unread: torch.Tensor | None = None  # losses of steps not yet read back
                if pending is not None:
                    # Replay the draws (shuffle, augmentation) of the batches already trained.
                    for _ in range(counters.batch):
                        next(batches)
                    done = counters.batch
                    checkpoint.set_global_rng_state(pending["rng"]["global"])
                    pending = None
                epoch_start = time.perf_counter()
                for inputs, targets in batches:
                    phase = f"step {counters.step + 1} (epoch {epoch})"
                    global_n = _global_batch(len(train_set), protocol.batch_size, done + 1)
                    # DDP averages the ranks' gradients; weighting each by its share of the
                    # global batch makes that the global batch's mean when shares differ.
                    share = inputs.shape[0] * world.size / global_n if world.active else 1.0
                    loss = run_step(inputs, targets, share)
                    counters.step += 1
                    done += 1
                    counters.seen += global_n
                    unread = loss if unread is None else unread + loss
                    bad: float | None = None  # this rank's loss, when it is not finite
                    if device.type != "cuda" or done % _SYNC_EVERY == 0 or done == steps_per_epoch:
                        # Reading the loss makes the host wait for the device: every step on a
                        # CPU (where it costs nothing), every few steps on a GPU.
                        value = unread.item()
                        unread = None
                        if math.isfinite(value):
                            counters.running += value
                            progress.update(
                                task,
                                completed=counters.step,
                                info=f"epoch {epoch}/{protocol.epochs} loss {loss.item():.4f}",
                            )
                        elif not world.active:
                            raise RunFailed(_not_finite(value, counters.step, epoch, device))
                        else:
                            bad = value
                    if agreed(stop.requested or bad is not None):
                        if world.active:
                            _fail_together(bad, world, counters.step, epoch, device)
                        if unread is not None:
                            counters.running += unread.item()
                        counters.train_time += time.perf_counter() - epoch_start
                        if world.active:  # every rank is here, at the same step
                            running_by_rank = distributed.gather_objects(counters.running, world)
                        where = f"epoch {epoch}, batch {done} of {steps_per_epoch}"
                        raise Interrupted(save_last_now(done, epoch_rng), where)
                counters.train_time += time.perf_counter() - epoch_start
                epoch_loss = counters.running
                if world.active:  # the mean over ranks of their shards' losses
                    epoch_loss = sum(distributed.gather_objects(epoch_loss, world)) / world.size
                record: dict[str, float] = {
                    "epoch": epoch,
                    "loss": epoch_loss / steps_per_epoch,
                    "lr": optimizer.param_groups[0]["lr"],
                }
                if epoch % protocol.val_interval == 0 or epoch == protocol.epochs:
                    progress.update(task, info=f"epoch {epoch}/{protocol.epochs} validating")
                    # Validation draws from the global generator (its loader's base seed), so
                    # a stop during it saves the state from before, and the resume redoes it.
                    before_validation = checkpoint.global_rng_state()
                    phase = f"the validation of epoch {epoch}"
                    try:
                        last = evaluate(
                            model,
                            val_set,
                            protocol,
                            device,
                            dtype,
                            memory_format,
                            # Ranks validate different numbers of batches: only agree at the end.
                            should_stop=None if world.active else lambda: stop.requested,
                            tta=entry.tta,
                            world=world,
                        )
                    except _StopRequested:
                        where = f"epoch {epoch}, during validation"
                        saved = save_last_now(done, epoch_rng, before_validation)
                        raise Interrupted(saved, where) from None
                    record["val_mean_dice"] = last.mean()
                    improved = last.mean() > counters.best_dice
                    if improved:
                        counters.best_dice = last.mean()
                        counters.best_epoch = epoch
                        counters.best_per_class = last.per_class()
                else:
                    improved = False
                counters.history.append(record)
                counters.epoch = epoch
                phase = f"the checkpoint of epoch {epoch}"
                saved = save_epoch_end(improved)
                if agreed(stop.requested):
                    writer.wait()
                    raise Interrupted(saved, f"the end of epoch {epoch}")
            if last is None:  # resumed from the final epoch's checkpoint: score it again
                phase = "the final validation"
                last = evaluate(
                    model,
                    val_set,
                    protocol,
                    device,
                    dtype,
                    memory_format,
                    tta=entry.tta,
                    world=world,
                )
            phase = f"the checkpoint of epoch {epoch}"
            writer.wait()  # the final checkpoint is on disk before the record says succeeded
        except (HarnessError, RunFailed, KeyboardInterrupt):
            raise
        except torch.OutOfMemoryError as exc:
            advice = (
                "try --micro-batch N (same protocol, smaller pieces of each batch) or "
                "another device"
                if "validation" not in phase
                else "validation scores one batch of full-resolution images at a time; "
                "try a device with more memory"
            )
            raise RunFailed(
                f"out of memory on {device_name(device)} at {phase}: {one_line(exc, 160)}; {advice}"
            ) from exc
        except Exception as exc:
            raise RunFailed(
                f"{type(exc).__name__} at {phase}: "
                f"{one_line(exc, 240)}; rerun with --debug for the traceback"
            ) from exc
    return TrainResult(
        mean_dice=last.mean(),
        per_class_dice=last.per_class(),
        per_image_dice=last.per_image().tolist(),
        val_images=[p.name for p in val_images],
        best_epoch=counters.best_epoch,
        best_mean_dice=counters.best_dice,
        best_per_class_dice=counters.best_per_class,
        history=counters.history,
        parameters=parameters,
        train_images_per_s=counters.seen / counters.train_time if counters.train_time else 0.0,
        peak_memory_mb=_peak_memory_mb(device),
        wall_s=wall_before + time.perf_counter() - started,
        device=device_name(device) if not world.active else f"{world.size} × {device_name(device)}",
        model=model,
        execution={
            "micro_batch": train_step.micro_batch,
            "processes": world.size,
            "compile": bool(compile),
            "precision": {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype],
        },
    )


def _not_finite(
    value: float, step: int, epoch: int, device: torch.device, rank: int | None = None
) -> str:
    """The message of a run whose loss stopped being a number (on ``rank`` of several)."""
    on = f" on rank {rank}" if rank is not None else ""
    return (
        f"loss became {value} {'by' if device.type == 'cuda' else 'at'} step {step}{on} "
        f"(epoch {epoch}); try a lower lr (--set lr=...) or --set grad_clip=1.0"
    )


def _fail_together(
    bad: float | None, world: World, step: int, epoch: int, device: torch.device
) -> None:
    """Raise on every rank if any rank's loss was not finite (``bad``), so that the main
    rank writes the failed record; it alone prints the error. A collective: every rank calls."""
    losses = distributed.gather_objects(bad, world)
    culprits = [(rank, value) for rank, value in enumerate(losses) if value is not None]
    if culprits:
        rank, value = culprits[0]
        raise RunFailed(_not_finite(value, step, epoch, device, rank), echoed=not world.is_main)


class _BackgroundWriter:
    """Writes one checkpoint at a time on a thread, so training does not wait for the disk.

    What it writes is a copy taken at the end of the epoch, so the next epoch may change
    the model freely; ``wait`` blocks until the write is on disk and re-raises its error.
    A kill during a write leaves the previous checkpoint, as every write is atomic.
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

    def __enter__(self) -> _BackgroundWriter:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.wait()
            return
        with contextlib.suppress(Exception):  # already failing: keep that error, not this one
            self.wait()


def _cpu_copy(value: Any) -> Any:
    """Tensors copied to the CPU (training goes on changing the originals), containers rebuilt."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _cpu_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cpu_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_cpu_copy(v) for v in value)
    return value


def _state_of(component: Any, noun: str, name: str) -> dict[str, Any]:
    """A component's ``state_dict()``, refused early if a checkpoint could not hold it."""
    state = component.state_dict()
    checkpoint.check_plain(state, f"{noun} '{name}'")
    return state


def _set_augment_rng(augment: Any, state: list[Any], path: Path) -> None:
    try:
        checkpoint.set_augment_rng_state(augment, state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def _restore(
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
        counters = _Counters.from_state(state)
        needed = ["global", "loader", "augment"]
        missing = [k for k in needed if k not in state["rng"]]
        if counters.batch and not isinstance(state.get("epoch_start_rng"), dict):
            missing.append("epoch_start_rng")
        if missing:
            raise KeyError(missing[0])
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise CheckpointError(
            f"{ckpt.path}: incomplete or incompatible training state "
            f"({type(exc).__name__}: {one_line(exc, 160)}); delete {ckpt.path.parent} "
            "to start afresh"
        ) from None


def _worker_init(worker_id: int) -> None:
    """In each DataLoader worker: leave Ctrl-C to the main process, and reseed the augmentation.

    Each worker holds a copy of the transform; reseeded from the worker's own seed (the
    loader's base seed plus its id), workers stop repeating each other's draws, and the
    draws follow from the loader's generator, which checkpoints restore.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    info = torch.utils.data.get_worker_info()
    augment = getattr(info.dataset, "augment", None) if info is not None else None
    if hasattr(augment, "set_random_seed"):
        augment.set_random_seed(info.seed % 2**32)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset: EvalDataset,
    protocol: Protocol,
    device: torch.device,
    dtype: torch.dtype | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
    should_stop: Callable[[], bool] | None = None,
    tta: str = "none",
    world: World | None = None,
) -> DiceAccumulator:
    """Dice on ``dataset``, one image at a time at its original resolution, on ``device``.

    ``should_stop`` is asked before each batch; when it says yes, validation is abandoned.
    ``tta="flip"`` averages the logits of each image and of its mirror before the threshold,
    exactly as ``harness predict --tta flip`` does. With an active ``world`` each rank
    scores every ``world.size``-th image and the per-image score rows are gathered, so
    every rank returns what one process scoring all images would, row for row.
    """
    from harness.runs.predict import tta_logits  # predict builds on runs, which builds on us

    world = world or World()
    distributed.broadcast_buffers(model, world)  # every shard scored by rank 0's model
    model.eval()
    scores = DiceAccumulator(CLASSES, threshold=protocol.threshold)
    positions = distributed.shard(len(dataset), world)
    part = Subset(dataset, positions) if world.active else dataset
    loader = DataLoader(
        part,
        batch_size=protocol.batch_size,
        num_workers=protocol.num_workers,
        worker_init_fn=_worker_init,
        pin_memory=device.type == "cuda",
    )
    for inputs, indices in loader:
        if should_stop is not None and should_stop():
            model.train()
            raise _StopRequested
        with autocast(device, dtype):
            logits = tta_logits(model, inputs.to(device, memory_format=memory_format), tta)
        size = None
        if protocol.eval_resolution != "original":
            size = (int(protocol.eval_resolution),) * 2
        for row, index in zip(logits, indices.tolist(), strict=True):
            truth = dataset.truth(index, size)  # released after this image
            scores.add_logits(row, truth, name=dataset.paths[index].name)
    model.train()
    if not world.active:
        return scores
    rows = distributed.gather_rows(scores.per_image(), positions, len(dataset), world)
    names = [p.name for p in dataset.paths]
    return DiceAccumulator.from_rows(rows, names, CLASSES, threshold=protocol.threshold)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10
