"""The standard training protocol: one entry, one seed, one benchmark.

Everything that makes runs comparable is fixed here or by the protocol: seeding,
precision (AMP on CUDA — bf16 where supported, else fp16 with a grad scaler — and
fp32 on CPU), the split, the validation schedule and the metric. The final epoch's
Dice is what the leaderboard ranks; the best epoch is recorded apart.
"""

from __future__ import annotations

import contextlib
import math
import random
import resource
import sys
import time
from collections.abc import Sequence
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
from torch.utils.data import DataLoader

from harness.annotations import rasterize
from harness.classes import CLASSES, NUM_CLASSES
from harness.data import EvalDataset, TrainDataset
from harness.dice import DiceAccumulator
from harness.entry import Entry
from harness.errors import HarnessError, RunFailed
from harness.plugin_manager import Registry
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


def build_components(
    protocol: Protocol, entry: Entry, registry: Registry, steps_per_epoch: int
) -> tuple[torch.nn.Module, Any, torch.optim.Optimizer, Any, Any]:
    """Model, loss, optimizer, scheduler and augmentation, each from its plugin."""
    model_kwargs: dict[str, Any] = dict(entry.model.kwargs)
    if protocol.pretrained:
        model_kwargs.setdefault("encoder_weights", protocol.pretrained)
    model = registry.get("models", entry.model.name).build(
        num_classes=NUM_CLASSES,
        in_channels=protocol.in_channels,
        encoder=entry.encoder or protocol.encoder,
        **model_kwargs,
    )
    if not isinstance(model, torch.nn.Module):
        raise HarnessError(f"model {entry.model.name!r} did not return a torch.nn.Module")
    loss = registry.get("losses", entry.loss.name).build(**entry.loss.kwargs)
    optimizer = registry.get("optimizers", entry.optimizer.name).build(
        [p for p in model.parameters() if p.requires_grad],
        lr=protocol.lr,
        weight_decay=protocol.weight_decay,
        **entry.optimizer.kwargs,
    )
    total = protocol.epochs * steps_per_epoch
    scheduler = registry.get("schedulers", entry.scheduler.name).build(
        optimizer,
        total_steps=total,
        warmup_steps=min(total - 1, round(protocol.warmup_epochs * steps_per_epoch)),
        **entry.scheduler.kwargs,
    )
    augment = registry.get("augmentations", entry.augmentation.name).build(
        image_size=protocol.resolution, **entry.augmentation.kwargs
    )
    return model, loss, optimizer, scheduler, augment


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
) -> TrainResult:
    """Train one entry with one seed under ``protocol``; evaluate on ``val_images``."""
    console = console or Console(stderr=True)
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
    parameters = sum(p.numel() for p in model.parameters())

    train_set = TrainDataset(train_images, protocol.resolution, augment)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        train_set,
        batch_size=protocol.batch_size,
        shuffle=True,
        drop_last=False,
        generator=generator,
        num_workers=protocol.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=protocol.num_workers > 0,
    )
    val_set = EvalDataset(val_images, protocol.resolution)
    dtype = amp_dtype(protocol, device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    history: list[dict[str, float]] = []
    best: tuple[float, int, dict[str, float]] = (-1.0, 0, {})
    last: DiceAccumulator | None = None
    train_time = 0.0
    seen = 0
    step = 0
    total_steps = protocol.epochs * steps_per_epoch
    with _progress(console) as progress:
        task = progress.add_task(f"seed {seed}", total=total_steps, info="")
        for epoch in range(1, protocol.epochs + 1):
            model.train()
            epoch_start = time.perf_counter()
            running = 0.0
            for inputs, targets in loader:
                inputs = inputs.to(device, non_blocking=True, memory_format=memory_format)
                targets = targets.to(device, non_blocking=True)
                with _autocast(device, dtype):
                    logits = model(inputs)
                    loss = loss_fn(logits.float(), targets)
                step += 1
                if not torch.isfinite(loss):
                    raise RunFailed(
                        f"loss became {loss.item()} at step {step} (epoch {epoch}); "
                        "try a lower lr (--set lr=...) or --set grad_clip=1.0"
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if protocol.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), protocol.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                running += loss.item()
                seen += inputs.shape[0]
                progress.update(
                    task,
                    advance=1,
                    info=f"epoch {epoch}/{protocol.epochs} loss {loss.item():.4f}",
                )
            train_time += time.perf_counter() - epoch_start
            record: dict[str, float] = {
                "epoch": epoch,
                "loss": running / steps_per_epoch,
                "lr": optimizer.param_groups[0]["lr"],
            }
            if epoch % protocol.val_interval == 0 or epoch == protocol.epochs:
                progress.update(task, info=f"epoch {epoch}/{protocol.epochs} validating")
                last = evaluate(model, val_set, protocol, device, dtype, memory_format)
                record["val_mean_dice"] = last.mean()
                if last.mean() > best[0]:
                    best = (last.mean(), epoch, last.per_class())
            history.append(record)
    assert last is not None
    return TrainResult(
        mean_dice=last.mean(),
        per_class_dice=last.per_class(),
        per_image_dice=last.per_image().tolist(),
        val_images=[p.name for p in val_images],
        best_epoch=best[1],
        best_mean_dice=best[0],
        best_per_class_dice=best[2],
        history=history,
        parameters=parameters,
        train_images_per_s=seen / train_time if train_time else 0.0,
        peak_memory_mb=_peak_memory_mb(device),
        wall_s=time.perf_counter() - started,
        device=device_name(device),
        model=model,
    )


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset: EvalDataset,
    protocol: Protocol,
    device: torch.device,
    dtype: torch.dtype | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> DiceAccumulator:
    """Dice on ``dataset``, one image at a time at its original resolution, on ``device``."""
    model.eval()
    scores = DiceAccumulator(CLASSES, threshold=protocol.threshold)
    loader = DataLoader(dataset, batch_size=protocol.batch_size, num_workers=protocol.num_workers)
    for inputs, indices in loader:
        with _autocast(device, dtype):
            logits = model(inputs.to(device, memory_format=memory_format))
        for row, index in zip(logits, indices.tolist(), strict=True):
            ann = dataset.annotation(index)
            size = None
            if protocol.eval_resolution != "original":
                size = (int(protocol.eval_resolution),) * 2
            target = torch.from_numpy(rasterize(ann, size))
            scores.add_logits(row, target, name=dataset.paths[index].name)
    model.train()
    return scores


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10
