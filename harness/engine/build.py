"""What a run trains with: its components from their plugins, on the device, with the
training loader and the protocol's training step, built the same way for every entry."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from harness.components.contracts import Transform, build_components, check_logits, check_loss
from harness.components.entry import Entry
from harness.components.registry import Registry
from harness.data.datasets import EvalDataset, TrainDataset
from harness.engine.device import (
    Placement,
    Precision,
    memory_format,
    reset_peak_memory,
    seed_everything,
)
from harness.engine.distributed import World
from harness.engine.inference import resolve_tta
from harness.engine.loader import make_train_loader
from harness.engine.step import StepSettings, TrainStep
from harness.protocol import Protocol


@dataclass(frozen=True)
class Recipe:
    """What a run trains and by which rules: the entry's components, built from the
    registry's plugins, under ``protocol`` (the benchmark's, with the entry's own
    hyperparameters in it: ``Entry.protocol_for``)."""

    protocol: Protocol
    entry: Entry
    registry: Registry


@dataclass(frozen=True)
class RunSpec:
    """One run: a recipe, a seed, and the images it trains on and is validated on."""

    recipe: Recipe
    seed: int
    train_images: Sequence[Path]
    val_images: Sequence[Path]


@dataclass(frozen=True)
class Execution:
    """How a run executes, never part of the protocol: the device, this process's place in
    a data-parallel run (``world``), the micro-batch (None: whole batches, halved on out of
    memory), whether the step goes through ``torch.compile``, the precision, resolved
    (``Precision.resolve``; None: the protocol's own on this device), and how many runs of
    the command train at once (``concurrent_runs``; None: not known), which the run's timed
    window keeps (``harness.engine.throughput``)."""

    device: torch.device
    world: World = World()
    micro_batch: int | None = None
    compile: bool = False
    precision: Precision | None = None
    concurrent_runs: int | None = 1


def make_train_step(
    model: torch.nn.Module,
    loss_fn: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    recipe: Recipe,
    device: torch.device,
    micro_batch: int | None = None,
    precision: Precision | None = None,
) -> TrainStep:
    """The protocol's training step for these components, exactly as ``train`` runs it.

    Precision (``precision``, None: the protocol's own on ``device``; a grad scaler only for
    fp16), memory format, gradient clipping, and the plugin contract checks on the first
    batch naming the entry's plugins.
    """
    entry, registry = recipe.entry, recipe.registry
    placement = Placement.of(recipe.protocol, device, precision)
    settings = StepSettings(placement, recipe.protocol.grad_clip, micro_batch)
    return TrainStep(
        model,
        loss_fn,
        optimizer,
        scheduler,
        settings=settings,
        check_logits=lambda logits, inputs: check_logits(logits, inputs, entry, registry),
        check_loss=lambda loss: check_loss(loss, entry, registry),
    )


@dataclass
class Setup:
    """One run's model, data and step, as the protocol builds them."""

    protocol: Protocol
    entry: Entry
    seed: int
    device: torch.device
    world: World
    model: torch.nn.Module  # the plain module; ``step.model`` may wrap it (DDP, compile)
    augment: Any
    train_set: TrainDataset
    val_set: EvalDataset
    generator: torch.Generator  # the loader's: every draw of the training data
    loader: DataLoader
    step: TrainStep
    steps_per_epoch: int
    parameters: int
    #: The micro-batch asked for (None: whole batches, halved on out of memory).
    micro_batch: int | None = None
    compile: bool = False
    #: Runs of the command training at once (``Execution.concurrent_runs``).
    concurrent_runs: int | None = 1
    #: The entry's validation test-time augmentation, as its plugin's transforms (none: ``()``).
    tta: tuple[Transform, ...] = ()


def _on_device(model: torch.nn.Module, protocol: Protocol, device: torch.device) -> torch.nn.Module:
    model = model.to(device=device, memory_format=memory_format(protocol))
    if device.type == "cuda":
        # Every batch has the protocol's shape: let cuDNN time its kernels once and keep the
        # fastest (GPU runs are not bit-reproducible anyway; CPU runs are, and unaffected).
        torch.backends.cudnn.benchmark = True
    return model


def _stepped(model: torch.nn.Module, device: torch.device, world: World, compile: bool) -> Any:
    """The module the step calls: data-parallel on several processes, compiled if asked."""
    stepped: torch.nn.Module = model
    if world.active:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        stepped = DistributedDataParallel(model, device_ids=ids)
    return torch.compile(stepped) if compile else stepped


def build_setup(run: RunSpec, execution: Execution) -> Setup:
    """Seed, build every component from its plugin, and put the run on the device."""
    protocol, seed, device = run.recipe.protocol, run.seed, execution.device
    seed_everything(seed)
    steps_per_epoch = max(1, math.ceil(len(run.train_images) / protocol.batch_size))
    model, loss_fn, optimizer, scheduler, augment = build_components(
        protocol, run.recipe.entry, run.recipe.registry, steps_per_epoch
    )
    if hasattr(augment, "set_random_seed"):
        # albumentations 2.x keeps its own random state, independent of the global seeds.
        augment.set_random_seed(seed)
    model = _on_device(model, protocol, device)
    parameters = sum(p.numel() for p in model.parameters())
    train_set = TrainDataset(run.train_images, protocol.resolution, augment)
    generator = torch.Generator().manual_seed(seed)
    world = execution.world
    loader = make_train_loader(train_set, protocol, device, generator, world, seed=seed)
    val_set = EvalDataset(run.val_images, protocol.resolution)
    stepped = _stepped(model, device, world, execution.compile)
    step = make_train_step(
        stepped,
        loss_fn,
        optimizer,
        scheduler,
        run.recipe,
        device,
        execution.micro_batch,
        execution.precision,
    )
    reset_peak_memory(device)
    return Setup(
        protocol=protocol,
        entry=run.recipe.entry,
        seed=seed,
        device=device,
        world=world,
        model=model,
        augment=augment,
        train_set=train_set,
        val_set=val_set,
        generator=generator,
        loader=loader,
        step=step,
        steps_per_epoch=steps_per_epoch,
        parameters=parameters,
        micro_batch=execution.micro_batch,
        compile=execution.compile,
        concurrent_runs=execution.concurrent_runs,
        tta=resolve_tta(run.recipe.entry.tta, run.recipe.registry),
    )
