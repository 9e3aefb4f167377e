"""Runs: resolve what the user asked for into a benchmark and an entry, train each seed,
leave a record per seed, and regenerate the benchmark's leaderboard.

This is the library behind ``harness run``; everything it does can be done from Python.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from harness import data
from harness import protocol as protocols
from harness.data import DatasetInfo
from harness.entry import KINDS_BY_FIELD, Component, Entry, parse_component
from harness.errors import HarnessError, RunFailed
from harness.layout import list_images
from harness.leaderboard import regenerate
from harness.plugin_manager import Registry
from harness.protocol import Protocol
from harness.records import RECORD_NAME, Record, code_revision, library_versions, write_record
from harness.training import TrainResult, build_components, resolve_device, train


@dataclass
class RunRequest:
    """What ``harness run`` was asked, before anything is resolved."""

    model: str
    loss: str
    optimizer: str | None = None
    scheduler: str | None = None
    augmentation: str | None = None
    encoder: str | None = None
    data: Path | None = None
    protocol: str = "synthetic"
    seeds: str | None = None
    plugins: Sequence[str] = ()
    sets: Sequence[str] = ()
    device: str = "auto"
    runs_dir: Path = Path("runs")
    leaderboards_dir: Path = Path("leaderboards")


@dataclass
class Benchmark:
    """One dataset (by fingerprint) under one protocol (by hash): one leaderboard."""

    dataset: DatasetInfo
    protocol: Protocol

    @property
    def id(self) -> str:
        return (
            f"{data.slug(self.protocol.name)}-{self.protocol.hash}"
            f"__{self.dataset.name}-{self.dataset.fingerprint[:8]}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dataset": {"name": self.dataset.name, "fingerprint": self.dataset.fingerprint},
            "protocol": {
                "name": self.protocol.name,
                "label": self.protocol.label,
                "hash": self.protocol.hash,
                "fields": self.protocol.hashed_fields(),
            },
        }


@dataclass
class Plan:
    """A resolved request: everything needed to start training."""

    registry: Registry
    benchmark: Benchmark
    entry: Entry
    seeds: list[int]
    device: Any
    runs_dir: Path
    leaderboards_dir: Path
    outcomes: list[tuple[Path, Record]] = field(default_factory=list)


def parse_seeds(text: str | None, default: Sequence[int]) -> list[int]:
    """``3`` means seeds 0, 1, 2; ``0,4,7`` means exactly those."""
    if text is None:
        return list(default)
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise HarnessError(f"--seeds {text!r}: give a count (3) or a list (0,1,2)") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise HarnessError(f"--seeds {text!r}: need at least one seed, non-negative, no repeats")
    return seeds


def plan(request: RunRequest, progress: Callable[[int, int], None] | None = None) -> Plan:
    """Resolve plugins, protocol, dataset and entry; fail with one clear line on bad input."""
    registry = Registry.load(request.plugins)
    proto = protocols.load(request.protocol).derive(list(request.sets))
    chosen = {
        "model": request.model,
        "loss": request.loss,
        "optimizer": request.optimizer or proto.optimizer,
        "scheduler": request.scheduler or proto.scheduler,
        "augmentation": request.augmentation or proto.augmentation,
    }
    components: dict[str, Component] = {}
    for field_name, text in chosen.items():
        option = "--aug" if field_name == "augmentation" else f"--{field_name}"
        component = parse_component(text, option)
        registry.get(KINDS_BY_FIELD[field_name], component.name)  # unknown names fail here
        components[field_name] = component
    entry = Entry(**components, encoder=request.encoder)
    # Build every component once now, so a parameter a plugin rejects fails before any work.
    build_components(proto, entry, registry, steps_per_epoch=1)
    if request.data is None:
        root = data.synthetic_dataset(proto.synth_ids, proto.synth_size, proto.synth_seed, progress)
    else:
        root = Path(request.data)
    dataset = data.describe(root)
    return Plan(
        registry=registry,
        benchmark=Benchmark(dataset, proto),
        entry=entry,
        seeds=parse_seeds(request.seeds, proto.seeds),
        device=resolve_device(request.device),
        runs_dir=Path(request.runs_dir),
        leaderboards_dir=Path(request.leaderboards_dir),
    )


def run_dir(plan: Plan, seed: int) -> Path:
    key = hashlib.sha256(plan.entry.key.encode()).hexdigest()[:8]
    name = data.slug(plan.entry.label)[:60]
    return plan.runs_dir / plan.benchmark.id / f"{name}-{key}" / f"seed-{seed}"


def entry_record(plan: Plan) -> dict[str, Any]:
    """The entry as recorded: each component with its parameters and provider."""
    out: dict[str, Any] = {}
    for field_name, component in plan.entry.components().items():
        provider = plan.registry.get(KINDS_BY_FIELD[field_name], component.name)
        out[field_name] = {
            **component.to_dict(),
            "plugin": provider.plugin,
            "distribution": provider.distribution,
            "version": provider.version,
        }
    out["encoder"] = plan.entry.encoder
    out["effective_encoder"] = plan.entry.encoder or plan.benchmark.protocol.encoder
    return out


#: The final epoch's weights (what the record's Dice measured), beside ``record.json``.
WEIGHTS_NAME = "weights-final.safetensors"


def save_weights(path: Path, model: Any) -> None:
    """Model weights as safetensors (never pickle), written atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(state, str(tmp))
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def execute(
    plan: Plan,
    console: Console,
    on_result: Callable[[int, TrainResult], None] | None = None,
) -> list[tuple[Path, Record]]:
    """Train every seed of the plan; write a record per seed and regenerate the leaderboard."""
    proto = plan.benchmark.protocol
    images = list_images(plan.benchmark.dataset.root, "train")
    train_images, val_images = data.split(images, proto.folds, proto.fold)
    for seed in plan.seeds:
        started = _now()
        base = {
            "seed": seed,
            "benchmark": plan.benchmark.to_dict(),
            "entry": entry_record(plan),
            "versions": library_versions(),
            "code_revision": code_revision(),
            "started_at": started,
        }
        path = run_dir(plan, seed) / RECORD_NAME
        t0 = time.perf_counter()
        try:
            result = train(
                proto,
                plan.entry,
                plan.registry,
                seed=seed,
                train_images=train_images,
                val_images=val_images,
                device=plan.device,
                console=console,
            )
        except Exception as exc:
            if isinstance(exc, HarnessError):
                raise
            reason = str(exc) if isinstance(exc, RunFailed) else f"{type(exc).__name__}: {exc}"
            record = Record(
                status="failed",
                mean_dice=None,
                per_class_dice={},
                error=reason,
                cost={"wall_s": time.perf_counter() - t0},
                finished_at=_now(),
                **base,
            )
            write_record(path, record)
            plan.outcomes.append((path, record))
            if isinstance(exc, RunFailed):
                raise RunFailed(f"seed {seed} failed: {reason} (record: {path})") from None
            raise
        record = Record(
            status="succeeded",
            mean_dice=result.mean_dice,
            per_class_dice=result.per_class_dice,
            best={
                "epoch": result.best_epoch,
                "mean_dice": result.best_mean_dice,
                "per_class_dice": result.best_per_class_dice,
            },
            cost={
                "parameters": result.parameters,
                "train_images_per_s": result.train_images_per_s,
                "peak_memory_mb": result.peak_memory_mb,
                "wall_s": result.wall_s,
                "device_hours": result.wall_s / 3600,
                "device": result.device,
            },
            history=result.history,
            per_image_dice=result.per_image_dice,
            val_images=result.val_images,
            finished_at=_now(),
            **base,
        )
        save_weights(path.parent / WEIGHTS_NAME, result.model)
        write_record(path, record)
        plan.outcomes.append((path, record))
        regenerate(plan.benchmark.id, plan.runs_dir, plan.leaderboards_dir)
        if on_result is not None:
            on_result(seed, result)
    return plan.outcomes
