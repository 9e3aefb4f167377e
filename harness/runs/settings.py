"""How a plan's runs execute here, resolved once: the request's ``Launch`` (strings, as the
command line gave them) becomes ``LaunchSettings`` (values: the device, the precision with
its autocast dtype and grad scaler, the micro-batch, compile, the trackers, the processes).

The planner (``harness.runs.planning``) calls ``resolve`` for each request; everything
downstream (a seed's training, its record, its trackers, ``--nproc``) reads the settings and
never parses an option again. The engine says what is wrong with a device or precision in
its own words (``harness.engine.device.Unavailable``); here, where the request is read, the
line names the option the user gave, exactly as the command line declares it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from harness.engine import distributed
from harness.engine.device import Precision, Unavailable, resolve_device
from harness.engine.distributed import World
from harness.errors import HarnessError
from harness.protocol import Protocol
from harness.runs import tracking
from harness.runs.requests import RunRequest, field_of, flag


@dataclass(frozen=True)
class LaunchSettings:
    """How a plan's runs train here, never part of the protocol: resolved once from the
    request's ``Launch`` (``resolve``)."""

    #: The device (on CUDA in a data-parallel run, this process's GPU).
    device: torch.device
    #: What the runs train in here: the name records say, the autocast dtype, the scaler.
    precision: Precision = Precision()
    #: Split each batch into pieces of this size (None: whole batches, halved on out of memory).
    micro_batch: int | None = None
    #: The training step goes through ``torch.compile``.
    compile: bool = False
    #: The trackers each run logs to besides ``metrics.jsonl``, in order (none: ``()``).
    track: tuple[str, ...] = ()
    #: The processes each run trains on, data-parallel (``--nproc``).
    processes: int = 1
    #: The most runs of the command that train at once: 1 in this process, N with
    #: ``--jobs N`` (Ray or Slurm); None where nothing bounds them (``--cluster`` alone).
    #: Each run's timed windows keep it (``harness.engine.throughput``): on a CPU, runs side
    #: by side share its cores, and their figures are marked contended.
    concurrent_runs: int | None = 1
    #: Each run keeps its out-of-fold probabilities beside its record (``--keep-predictions``).
    keep_predictions: bool = False


def resolve(
    request: RunRequest, proto: Protocol, remote: bool = False
) -> tuple[LaunchSettings, World]:
    """The request's launch settings under ``proto``, and this process's place in a
    data-parallel run; one line naming the option on bad input. ``remote``: the chosen
    executor trains the runs elsewhere (``Executor.remote``), so this machine's GPUs do not
    bound ``--nproc``."""
    launch = request.launch
    if launch.micro_batch is not None and launch.micro_batch < 1:
        raise HarnessError(f"--micro-batch {launch.micro_batch}: give a positive number")
    tracking.check_track(launch.track)  # a tracker not installed fails before any work
    device, world = _device(request, proto, remote)
    try:
        precision = Precision.resolve(proto, device, launch.precision)
    except Unavailable as exc:
        raise _as_option(exc) from None
    settings = LaunchSettings(
        device=device,
        precision=precision,
        micro_batch=launch.micro_batch,
        compile=launch.compile,
        track=tracking.tracker_names(launch.track),
        processes=launch.nproc,
        concurrent_runs=launch.jobs or (None if launch.cluster else 1),
        keep_predictions=launch.keep_predictions,
    )
    return settings, world


def _as_option(exc: Unavailable) -> HarnessError:
    """The engine's line about a device or precision, naming the option that asked for it
    (and ``--set`` for a protocol change)."""
    option = flag(field_of(exc.setting)).name
    return HarnessError(exc.said(option, derive=f"{flag(field_of('sets')).name} "))


def _device(request: RunRequest, proto: Protocol, remote: bool) -> tuple[torch.device, World]:
    """The device, and this process's place in a data-parallel run (``World()`` unless
    started by torch.distributed.run)."""
    try:
        device = resolve_device(request.launch.device)
    except Unavailable as exc:
        raise _as_option(exc) from None
    _check_nproc(request, proto, device, remote)
    world = distributed.init(device.type)
    if world.active and proto.batch_size < world.size:
        raise HarnessError(
            f"--nproc {world.size}: the protocol's batch of {proto.batch_size} cannot be shared "
            f"by {world.size} processes; use at most {proto.batch_size}"
        )
    if world.active and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    return device, world


def _check_nproc(request: RunRequest, proto: Protocol, device: torch.device, remote: bool) -> None:
    """``--nproc N``: positive; not under a torchrun of the user's (which sets the number of
    processes itself); a batch N processes can share; on CUDA, at most one per GPU here
    (unless the runs train elsewhere: ``remote``)."""
    nproc = request.launch.nproc
    if nproc < 1:
        raise HarnessError(f"--nproc {nproc}: give a positive number of processes")
    if nproc == 1 or os.environ.get(distributed.NPROC_ENV):  # one process, or our own ranks
        return
    if distributed.launched():
        raise HarnessError(
            "already running under torch.distributed.run (torchrun); "
            "leave out --nproc, the launcher sets the number of processes"
        )
    if proto.batch_size < nproc:
        raise HarnessError(
            f"--nproc {nproc}: the protocol's batch of {proto.batch_size} cannot be shared "
            f"by {nproc} processes; use at most {proto.batch_size}"
        )
    if device.type == "cuda" and not remote and nproc > torch.cuda.device_count():
        raise HarnessError(
            f"--nproc {nproc}: this machine has {torch.cuda.device_count()} CUDA device(s); "
            "use at most that many processes (one per GPU)"
        )
