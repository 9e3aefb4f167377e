#!/usr/bin/env python
"""Training speed on one GPU: the harness's step against a bare loop, and data-wait share.

For UNet++ with a ResNet-34 encoder at 512 px under AMP (bf16 where the card supports
it, else fp16 with a grad scaler) and channels_last, as ``harness run --protocol
standard-512 --set encoder=resnet34`` trains it, this measures:

1. training images per second and peak GPU memory of the harness's ``TrainStep`` (every
   component from its plugin, built as ``harness.engine.trainer.train`` builds it) and of the
   same training written by hand (``smp.UnetPlusPlus``, SMP's ``DiceLoss``,
   ``torch.optim.AdamW``, the loop inline), both fed the same pinned batches; warm-up steps
   are excluded and the device is synchronized around each timed loop;
2. the share of wall time the harness's step spends blocked on data when fed by the
   harness's own DataLoader (pinned memory, worker processes) from the preprocessing
   cache of a synthetic phantom drawn at ``--synth-size`` and read at ``--resolution``:
   time blocked in ``next(iterator)`` / wall time of the timed loop.  Target: under 5 %.

It prints a markdown table (card, torch version, every figure); ``--json OUT`` writes the
same figures.  ``--dry-run`` runs the same code on the CPU with tiny settings in fp32 (so
the tests can run it); without it, a machine with no CUDA device is an error (exit 2).
The phantom and its cache live in a temporary folder, removed at the end.

    .venv/bin/python scripts/gpu_bench.py                 # on a GPU (a minute or two on an H100)
    .venv/bin/python scripts/gpu_bench.py --batch 16 --json gpu.json
    .venv/bin/python scripts/gpu_bench.py --dry-run
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from harness.engine.device import peak_memory_mb

if TYPE_CHECKING:  # imported where used, so that a machine without CUDA is told at once
    from harness.components.entry import Entry
    from harness.components.registry import Registry
    from harness.data.datasets import TrainDataset
    from harness.engine.step import TrainStep
    from harness.protocol import Protocol

PROG = "gpu_bench"
MODEL = "unetpp"
LOSS = "dice"
PROTOCOL = "standard-512"  # AdamW, flat schedule, AMP, channels_last, Dice loss

Batch = tuple[torch.Tensor, torch.Tensor]
Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Settings:
    """What one run measures; the defaults of each mode are in ``DEFAULTS``."""

    batch: int
    resolution: int
    encoder: str
    steps: int
    warmup: int
    workers: int
    images: int
    synth_size: int
    dry_run: bool


DEFAULTS: dict[bool, dict[str, Any]] = {
    False: {  # on a GPU: the real figures
        "batch": 8,
        "resolution": 512,
        "encoder": "resnet34",
        "steps": 30,
        "warmup": 5,
        "workers": min(8, os.cpu_count() or 1),
        "images": 32,
        "synth_size": 1024,
    },
    True: {  # --dry-run: the same code path on the CPU in seconds
        "batch": 2,
        "resolution": 64,
        "encoder": "resnet34",
        "steps": 2,
        "warmup": 1,
        "workers": 2,
        "images": 4,
        "synth_size": 128,
    },
}


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, Path | None]:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--batch", type=int, help="images per step (default 8; dry run 2)")
    parser.add_argument("--resolution", type=int, help="training input side (default 512)")
    parser.add_argument("--encoder", help="UNet++ encoder (default resnet34)")
    parser.add_argument("--steps", type=int, help="timed steps per measurement (default 30)")
    parser.add_argument("--warmup", type=int, help="untimed steps before each (default 5)")
    parser.add_argument(
        "--workers", type=int, help="data-loader worker processes (default min(8, CPUs))"
    )
    parser.add_argument("--images", type=int, help="phantom images to draw (default 32)")
    parser.add_argument("--synth-size", type=int, help="side of the drawn images (default 1024)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures here")
    parser.add_argument(
        "--dry-run", action="store_true", help="tiny settings on the CPU in fp32, to test the code"
    )
    args = parser.parse_args(argv)
    given = {k: getattr(args, k) for k in DEFAULTS[False] if getattr(args, k) is not None}
    settings = Settings(**{**DEFAULTS[args.dry_run], **given}, dry_run=args.dry_run)
    for name in ("batch", "resolution", "steps", "images"):
        if getattr(settings, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if settings.warmup < 0 or settings.workers < 0:
        parser.error("--warmup and --workers must not be negative")
    if settings.synth_size < 64:
        parser.error("--synth-size must be at least 64 (the phantom's smallest)")
    return settings, args.json


def fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


# -- the two training steps ----------------------------------------------------------------


def harness_step(
    protocol: Protocol, entry: Entry, registry: Registry, device: torch.device, steps_per_epoch: int
) -> TrainStep:
    """``harness.engine.step.TrainStep`` as ``harness.engine.trainer.train`` builds it."""
    from harness.components.contracts import build_components
    from harness.engine.build import Recipe, make_train_step
    from harness.engine.device import seed_everything

    seed_everything(0)
    model, loss_fn, optimizer, scheduler, _ = build_components(
        protocol, entry, registry, steps_per_epoch
    )
    memory_format = torch.channels_last if protocol.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    recipe = Recipe(protocol, entry, registry)
    return make_train_step(model, loss_fn, optimizer, scheduler, recipe, device)


def bare_step(
    encoder: str, lr: float, weight_decay: float, device: torch.device, dtype: torch.dtype | None
) -> Step:
    """The same training by hand: the libraries' classes, the AMP loop written out."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    model = smp.UnetPlusPlus(
        encoder_name=encoder, encoder_weights=None, in_channels=1, classes=29
    ).to(device=device, memory_format=torch.channels_last)
    loss_fn = smp.losses.DiceLoss("multilabel", from_logits=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        inputs = inputs.to(device, non_blocking=True, memory_format=torch.channels_last)
        targets = targets.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(inputs)
            loss = loss_fn(logits.float(), targets)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        scheduler.step()
        return loss.detach()

    return step


# -- measuring -----------------------------------------------------------------------------


def timed_steps(
    step: Step, batches: Iterator[Batch], settings: Settings, device: torch.device
) -> dict[str, float]:
    """Images per second and ms per step over ``settings.steps`` after the warm-up; the
    wait for each batch (``next``) is counted apart, the peak memory is the timed loop's."""
    for _ in range(settings.warmup):
        step(*next(batches))
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    waited = 0.0
    losses = []
    start = time.perf_counter()
    for _ in range(settings.steps):
        before = time.perf_counter()
        inputs, targets = next(batches)
        waited += time.perf_counter() - before
        losses.append(step(inputs, targets))
    synchronize(device)
    wall = time.perf_counter() - start
    loss = torch.stack(losses).float().mean().item()
    if not math.isfinite(loss):
        raise RuntimeError(f"the loss became {loss} while measuring")
    return {
        "images_per_s": settings.steps * settings.batch / wall,
        "step_ms": 1e3 * wall / settings.steps,
        "peak_memory_mb": peak_memory_mb(device),
        "wall_s": wall,
        "wait_s": waited,
        "data_wait_share": waited / wall,
        "loss": loss,
    }


def report(what: str, figures: dict[str, float]) -> None:
    """A line as each measurement ends (on stderr), so a run cut short still tells something."""
    print(
        f"{PROG}: {what}: {figures['images_per_s']:.1f} images/s, {figures['step_ms']:.1f} ms "
        f"per step, peak {figures['peak_memory_mb']:.0f} MiB, "
        f"data wait {100 * figures['data_wait_share']:.1f} %",
        file=sys.stderr,
        flush=True,
    )


def cycle(batches: Sequence[Batch]) -> Iterator[Batch]:
    while True:
        yield from batches


def fixed_batches(dataset: TrainDataset, settings: Settings, device: torch.device) -> list[Batch]:
    """Two batches held in (pinned, on CUDA) host memory: each step still copies its batch
    to the device, as training does, but nothing waits for a loader."""
    loader = DataLoader(dataset, batch_size=settings.batch, shuffle=False)
    out = []
    for inputs, targets in loader:
        if device.type == "cuda":
            inputs, targets = inputs.pin_memory(), targets.pin_memory()
        out.append((inputs, targets))
        if len(out) == 2:
            break
    return out


def train_loader(dataset: TrainDataset, protocol: Protocol, device: torch.device) -> DataLoader:
    """The harness's training DataLoader, as ``harness.engine.trainer.train`` makes it."""
    from harness.engine.loader import make_train_loader

    return make_train_loader(dataset, protocol, device, torch.Generator().manual_seed(0))


def endless(loader: DataLoader) -> Iterator[Batch]:
    while True:
        yield from loader


def run(settings: Settings, device: torch.device, workdir: Path) -> dict[str, Any]:
    from harness import protocol as protocols
    from harness.components.entry import Component, Entry
    from harness.components.registry import Registry
    from harness.data.datasets import TrainDataset
    from harness.data.layout import list_images
    from harness.data.phantom import synthesize
    from harness.engine.device import Precision

    started = time.perf_counter()
    protocol = protocols.load(PROTOCOL).derive(
        [
            f"resolution={settings.resolution}",
            f"batch_size={settings.batch}",
            f"encoder={settings.encoder}",
            f"num_workers={settings.workers}",
            # The bare loop starts from random weights too: speed does not depend on them,
            # and a machine without the pretrained file can still measure.
            "encoder_weights=none",
        ]
    )
    entry = Entry(
        Component(MODEL),
        Component(LOSS),
        Component(protocol.optimizer),
        Component(protocol.scheduler),
        Component(protocol.augmentation),
    )
    assert (protocol.optimizer, protocol.scheduler) == ("adamw", "flat"), "bare loop mismatch"
    precision = Precision.resolve(protocol, device)  # the protocol's own on this device
    registry = Registry.load()

    clock = time.perf_counter()
    ids = math.ceil(settings.images / 2)  # two hands per ID folder
    root = synthesize(workdir / "phantom", ids=ids, size=settings.synth_size, test_ids=0)
    images = list_images(root, "train")[: settings.images]
    synthesis_s = time.perf_counter() - clock
    clock = time.perf_counter()
    TrainDataset(images, settings.resolution)  # builds the preprocessing cache
    cache_s = time.perf_counter() - clock
    # Enough samples that one epoch covers every step: epoch boundaries (worker restarts,
    # an empty prefetch queue) are rarer in real training than with a few dozen images.
    needed = (settings.warmup + settings.steps) * settings.batch
    repeated = images * math.ceil(needed / len(images))
    dataset = TrainDataset(repeated, settings.resolution)
    batches = fixed_batches(dataset, settings, device)

    # One model on the device at a time, so that each peak is its own; the harness last,
    # as its step goes on to be fed by the loader.
    release(device)
    bare = timed_steps(
        bare_step(settings.encoder, protocol.lr, protocol.weight_decay, device, precision.dtype),
        cycle(batches),
        settings,
        device,
    )
    report("bare loop", bare)
    release(device)
    steps_per_epoch = math.ceil(len(images) / settings.batch)
    ours = harness_step(protocol, entry, registry, device, steps_per_epoch)
    harness = timed_steps(ours, cycle(batches), settings, device)
    report("harness step", harness)
    loader = train_loader(dataset, protocol, device)
    fed = timed_steps(ours, endless(loader), settings, device)
    report("harness step fed by its DataLoader", fed)
    del ours, loader
    release(device)
    keep = ("images_per_s", "step_ms", "peak_memory_mb", "loss")
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "precision": precision.name,
        "channels_last": protocol.channels_last,
        "dry_run": settings.dry_run,
        "settings": {**asdict(settings), "model": MODEL, "loss": LOSS, "protocol": PROTOCOL},
        "harness": {k: harness[k] for k in keep},
        "bare": {k: bare[k] for k in keep},
        "time_ratio": harness["step_ms"] / bare["step_ms"],
        "loader": {
            k: fed[k] for k in ("images_per_s", "step_ms", "data_wait_share", "wait_s", "wall_s")
        },
        "synthesis_s": synthesis_s,
        "cache_s": cache_s,
        "total_s": time.perf_counter() - started,
    }


def table(result: dict[str, Any]) -> str:
    s, h, b, f = result["settings"], result["harness"], result["bare"], result["loader"]
    memory = "peak GPU memory (MiB)" if not s["dry_run"] else "peak RSS of the process (MiB)"
    lines = [
        f"**{result['device']}** · torch {result['torch']} (CUDA {result['cuda']}) · "
        f"UNet++/{s['encoder']} at {s['resolution']}² · batch {s['batch']} · "
        f"{result['precision']} · channels_last · {s['steps']} timed steps after "
        f"{s['warmup']} warm-up" + (" · DRY RUN (CPU, tiny settings)" if s["dry_run"] else ""),
        "",
        "| figure | harness step | bare loop |",
        "| --- | ---: | ---: |",
        f"| training images/s | {h['images_per_s']:.1f} | {b['images_per_s']:.1f} |",
        f"| ms per step | {h['step_ms']:.1f} | {b['step_ms']:.1f} |",
        f"| {memory} | {h['peak_memory_mb']:.0f} | {b['peak_memory_mb']:.0f} |",
        f"| step time, harness / bare (target ≤ 1.05) | {result['time_ratio']:.3f} | |",
        f"| fed by the harness's DataLoader ({s['workers']} workers): images/s | "
        f"{f['images_per_s']:.1f} | |",
        f"| data-wait share: blocked in next() / wall time (target < 5 %) | "
        f"{100 * f['data_wait_share']:.1f} % | |",
        "",
        f"Data: {s['images']} phantom images drawn at {s['synth_size']}² "
        f"({result['synthesis_s']:.1f} s), cached at {s['resolution']}² "
        f"({result['cache_s']:.1f} s); whole run {result['total_s']:.0f} s.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    settings, json_out = parse_args(argv)
    if settings.dry_run:
        device = torch.device("cpu")
        # One thread: on a small shared CPU, threads spin-waiting for each other make
        # a step take up to 10x longer, at random.
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        return fail(
            "no CUDA device is available (torch.cuda.is_available() is False); "
            "run this on a GPU machine, or add --dry-run to run its code on the CPU"
        )
    else:
        device = torch.device("cuda", torch.cuda.current_device())
    import segmentation_models_pytorch as smp

    known = smp.encoders.get_encoder_names()
    if settings.encoder not in known and not settings.encoder.startswith("tu-"):
        return fail(f"--encoder {settings.encoder}: not an SMP encoder; try resnet34")
    with tempfile.TemporaryDirectory(prefix=f"{PROG}-") as tmp, cache_in(Path(tmp) / "cache"):
        result = run(settings, device, Path(tmp))
    print(table(result))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


@contextlib.contextmanager
def cache_in(folder: Path) -> Iterator[None]:
    """The preprocessing cache in ``folder``, never the user's; the setting restored after."""
    previous = os.environ.get("HARNESS_CACHE_DIR")
    os.environ["HARNESS_CACHE_DIR"] = str(folder)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HARNESS_CACHE_DIR", None)
        else:
            os.environ["HARNESS_CACHE_DIR"] = previous


if __name__ == "__main__":
    sys.exit(main())
