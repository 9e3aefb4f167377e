"""One job trained in this process (or, in a data-parallel run, as one of its ranks).

The dispatcher (``harness.runs.dispatch``) has decided what the job does; this carries it out:
it holds the run folder, starts afresh or continues the ``last`` checkpoint, trains with the
run's trackers, and on success writes the final weights, the record and the pictures. A
run that fails writes nothing: its failed record is in the ``Outcome`` it returns, for the
dispatcher to write (or not, when an earlier success is kept). Only the main rank of a
data-parallel run writes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_bytes, sweep_stale_temps
from harness.data.datasets import EvalDataset
from harness.data.layout import list_images
from harness.engine import checkpoint, distributed, hardware, inference_cost, throughput
from harness.engine.device import Placement
from harness.engine.events import TrainObserver
from harness.engine.inference import out_of_fold, resolve_tta
from harness.engine.trainer import (
    Checkpointing,
    Execution,
    Recipe,
    RunSpec,
    TrainResult,
    train,
)
from harness.errors import HarnessError, RunFailed
from harness.locking import Lock
from harness.results.predictions import write_predictions
from harness.results.records import (
    WEIGHTS_NAME,
    Record,
    code_revision,
    library_versions,
    write_record,
)
from harness.runs.job import Action, Job, Outcome
from harness.runs.planning import Plan, entry_record, protocol_split
from harness.runs.report import run_pictures
from harness.runs.tracking.about import RunAbout
from harness.runs.tracking.preview import Preview
from harness.runs.tracking.session import Tracked, seed_tracking


def save_weights(path: Path, model: Any) -> None:
    """Model weights as safetensors (never pickle), written atomically (temp, fsync, rename)."""
    atomic_write_bytes(Path(path), checkpoint.weights_bytes(model.state_dict()))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_id(job: Job) -> dict[str, Any]:
    """What a checkpoint must belong to: this benchmark, this entry, this seed (this fold)."""
    plan = job.plan
    out = {"benchmark": plan.benchmark.id, "entry": plan.entry.key, "seed": int(job.seed)}
    return out if job.fold is None else {**out, "fold": int(job.fold)}


def train_job(job: Job, observer: TrainObserver) -> Outcome:
    """Carry out ``job`` (``Action.TRAIN`` or ``RESUME``) here. A failure is an ``Outcome``
    holding its failed record; a checkpoint that cannot be used raises (nothing written);
    Ctrl-C raises ``KeyboardInterrupt`` for the dispatcher to report."""
    plan = job.plan
    # In a data-parallel run the main rank holds the folder and writes; the others train.
    lock = hold(job.folder) if plan.world.is_main else contextlib.nullcontext()
    with lock:
        start = _start(job, observer) if plan.world.is_main else None
        if plan.world.active:  # every rank continues what the main rank loaded
            start = distributed.broadcast_object(start, plan.world)
        assert start is not None
        if not plan.world.is_main:
            return _train(job, start, observer)
        with _tracked(job, observer, start.resumed) as tracked:  # metrics.jsonl, and --track
            outcome = _train(job, start, tracked)
            tracked.finish(outcome.status)  # the record written: the trackers get the files
        return outcome


@contextlib.contextmanager
def hold(folder: Path) -> Iterator[None]:
    """Hold ``folder`` for this process; a second process on the same run is refused.

    The lock is an OS file lock, released by the kernel when its holder dies (kill -9).
    """
    folder.mkdir(parents=True, exist_ok=True)
    lock = Lock(folder / ".lock")  # removed when released: no .lock left in the run folder
    try:
        lock.acquire(timeout=0)
    except TimeoutError:
        raise HarnessError(
            f"{folder}: another harness process is running this run (lock {folder / '.lock'}); "
            "wait for it to finish or stop it"
        ) from None
    try:
        yield
    finally:
        lock.release()


@dataclass
class _Start:
    """How the main rank found the folder: plain values, sent to the other ranks."""

    resume_from: checkpoint.Checkpoint | None = None
    resumes: list[dict[str, Any]] = field(default_factory=list)
    started: str = ""

    @property
    def resumed(self) -> dict[str, Any] | None:
        return self.resume_from.state if self.resume_from is not None else None


def _start(job: Job, observer: TrainObserver) -> _Start:
    """Half-written files of a killed process swept; a fresh start clears an earlier run's
    checkpoints; a resume loads the ``last`` checkpoint (read here, sent to the other ranks,
    so ranks on other machines need no shared runs folder)."""
    ckpt_dir = checkpoint.directory(job.folder)
    for place in (job.folder, ckpt_dir):  # half-written files of a process killed here before
        sweep_stale_temps(place)
    started = now()
    if job.action is not Action.RESUME:
        if ckpt_dir.exists():
            checkpoint.discard(ckpt_dir)  # a finished or failed run's: this run starts afresh
        return _Start(started=started)
    resume_from = checkpoint.load(ckpt_dir, "last")
    if resume_from is None:
        raise HarnessError(f"{ckpt_dir}: the checkpoint to resume from disappeared")
    _check_precision(resume_from, job.plan.launch.precision.name)
    resumes = [
        *resume_from.state.get("resumes", []),
        {"epoch": resume_from.epoch, "batch": resume_from.batch, "at": started},
    ]
    observer.message(f"{job.unit}: resuming from {resume_from.describe()} ({resume_from.path})")
    return _Start(resume_from, resumes, str(resume_from.state.get("started_at", started)))


def _check_precision(resume_from: checkpoint.Checkpoint, here: str) -> None:
    """A run continues in the precision it started in (its record names one precision);
    a checkpoint from before precision was saved in it is taken as it is."""
    saved = resume_from.state.get("precision")
    if saved is not None and saved != here:
        folder = resume_from.path.parent
        raise checkpoint.CheckpointError(
            f"{resume_from.path}: this run trained in {saved} and would continue in {here}; "
            f"resume with --precision {saved}, or delete {folder} to start afresh"
        )


def _tracked(
    job: Job, observer: TrainObserver, resumed: dict[str, Any] | None
) -> contextlib.AbstractContextManager[Tracked]:
    """``observer`` with the seed's trackers (``harness.runs.tracking``)."""
    plan = job.plan
    track = plan.launch.track
    proto = job.protocol
    _, val_images = _images(job)
    preview = None
    if track and val_images:
        preview = Preview(val_images[0], proto.resolution, proto.threshold)
    run = {"benchmark": plan.benchmark.to_dict(), "entry": entry_record(plan)}
    about = RunAbout.of(
        {**run, "seed": job.seed, "fold": job.fold},
        unit=job.unit,
        name=job.name,
        group=plan.entry.label,
        runs_dir=plan.runs_dir,
        weights=WEIGHTS_NAME,
    )
    return seed_tracking(
        observer, job.folder, resumed=resumed, track=track, about=about, preview=preview
    )


def _images(job: Job) -> tuple[list[Path], list[Path]]:
    """The run's training and validation images (its fold's)."""
    images = list_images(job.plan.benchmark.dataset.root, "train")
    return protocol_split(images, job.protocol)


def base_fields(job: Job, started: str, resumes: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields every record of this job has, whatever the outcome."""
    plan = job.plan
    return {
        "seed": job.seed,
        "benchmark": plan.benchmark.to_dict(),
        "entry": entry_record(plan),
        "versions": library_versions(),
        "code_revision": code_revision(),
        "started_at": started,
        "resumes": resumes,
        "tuning": plan.tuning,
        "hardware": hardware.describe(plan.device),
        "fold": job.fold,
    }


def failed_record(job: Job, reason: str, base: dict[str, Any], wall_s: float) -> Record:
    """The record of a run that failed, saying why."""
    return Record(
        status="failed",
        mean_dice=None,
        per_class_dice={},
        error=reason,
        cost={"wall_s": wall_s, "device": str(job.plan.device), "executor": job.plan.executor},
        finished_at=now(),
        **base,
    )


def _train(job: Job, start: _Start, observer: TrainObserver) -> Outcome:
    """Train; the outcome of a success (written) or a failure (to be written)."""
    plan = job.plan
    base = base_fields(job, start.started, start.resumes)
    t0 = time.perf_counter()
    train_images, val_images = _images(job)

    def failure(reason: str, **how: Any) -> Outcome:
        record = failed_record(job, reason, base, time.perf_counter() - t0)
        return Outcome("failed", record if plan.world.is_main else None, reason, **how)

    try:
        result = _run_trainer(job, start, observer, train_images, val_images)
    except checkpoint.CheckpointError:
        raise  # a checkpoint that cannot be used: nothing was run, nothing is written
    except HarnessError as exc:  # a plugin that broke its contract
        return failure(str(exc), usage=True, echoed=exc.echoed)
    except RunFailed as exc:
        return failure(str(exc), echoed=exc.echoed)
    except Exception as exc:
        return failure(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    if not plan.world.is_main:
        return Outcome("succeeded")
    record = _succeeded(job, result, val_images, base, observer)
    return Outcome("succeeded", record)


def _run_trainer(
    job: Job,
    start: _Start,
    observer: TrainObserver,
    train_images: Sequence[Path],
    val_images: Sequence[Path],
) -> TrainResult:
    plan, launch = job.plan, job.plan.launch
    recipe = Recipe(plan.entry.protocol_for(job.protocol), plan.entry, plan.registry)
    return train(
        RunSpec(recipe, job.seed, train_images, val_images),
        Execution(
            launch.device,
            plan.world,
            micro_batch=launch.micro_batch,
            compile=launch.compile,
            precision=launch.precision,
            concurrent_runs=launch.concurrent_runs,
        ),
        observer=observer,
        checkpointing=Checkpointing(
            checkpoint.directory(job.folder) if plan.world.is_main else None,
            start.resume_from,
            run_id=run_id(job),
            extra_state={
                "resumes": start.resumes,
                "started_at": start.started,
                "precision": launch.precision.name,
            },
        ),
    )


def _succeeded(
    job: Job,
    result: TrainResult,
    val_images: Sequence[Path],
    base: dict[str, Any],
    observer: TrainObserver,
) -> Record:
    """The final weights, the kept predictions, the record and the pictures of a finished
    seed (main rank)."""
    plan = job.plan
    record = succeeded_record(result, plan.world.size, base)
    record.cost.update(_inference_cost(plan, result.model))
    record.cost["executor"] = plan.executor  # beside the hardware: what carried the run out
    save_weights(job.folder / WEIGHTS_NAME, result.model)
    if plan.launch.keep_predictions:  # on disk before the record that names them
        record.predictions = _keep_predictions(job, result.model, val_images, observer)
    write_record(job.record_path, record)
    # The resume state (weights and optimizer, twice the model) is spent once the record
    # says succeeded: weights-final holds the same weights, and best.* stays.
    checkpoint.retire(checkpoint.directory(job.folder), "last")
    proto = plan.benchmark.protocol
    run_pictures(  # after the record: a picture never costs a result
        job.folder,
        result.history,
        result.per_class_dice,
        model=result.model,
        image_path=val_images[0] if val_images else None,
        resolution=proto.resolution,
        threshold=proto.threshold,
    )
    return record


def _keep_predictions(
    job: Job, model: Any, val_images: Sequence[Path], observer: TrainObserver
) -> dict[str, Any] | None:
    """The run's validation probabilities under every installed test-time augmentation,
    written beside its record (``harness.results.predictions``); what the record says of
    them. A test-time augmentation that cannot be built is left out, and predictions that
    cannot be made cost no result: each is said, and the record says what was kept."""
    plan = job.plan
    proto = plan.entry.protocol_for(job.protocol)
    tta: dict[str, Any] = {"none": ()}
    for name in plan.registry.components("tta"):
        try:
            tta[name] = resolve_tta(name, plan.registry)
        except HarnessError as exc:
            observer.message(f"{job.unit}: predictions not kept under tta {name}: {exc}")
    dataset = EvalDataset(val_images, proto.resolution)
    placement = Placement.of(proto, plan.device, plan.launch.precision)
    images = out_of_fold(getattr(model, "module", model), dataset, proto, placement, tta)
    try:
        return write_predictions(job.folder, images, proto.threshold)
    except Exception as exc:  # a kept prediction is never worth the run
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        observer.message(f"{job.unit}: predictions not kept: {reason}")
        return None


def _inference_cost(plan: Plan, model: Any) -> dict[str, Any]:
    """Images/s and GFLOPs of the trained model at the protocol's resolution on the run's
    device (``harness.engine.inference_cost``); a model that cannot be measured so costs no
    result: its columns stay empty."""
    proto = plan.benchmark.protocol
    since = throughput.CpuSample.now()
    try:
        measured = inference_cost.measure(
            getattr(model, "module", model),
            proto.in_channels,
            proto.resolution,
            Placement.of(proto, plan.device, plan.launch.precision),
        )
        window = throughput.conditions(plan.device, plan.launch.concurrent_runs, since)
        return {**measured, "inference_window": window}
    except Exception as exc:  # a measurement is never worth a run: the reason is kept
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        return {"inference_images_per_s": None, "gflops": None, "inference_error": reason}


def succeeded_record(result: TrainResult, processes: int, base: dict[str, Any]) -> Record:
    return Record(
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
            "train_window": result.train_window,
            "peak_memory_mb": result.peak_memory_mb,
            "wall_s": result.wall_s,
            "device_hours": result.wall_s / 3600 * processes,
            "device": result.device,
            **result.execution,
        },
        history=result.history,
        per_image_dice=result.per_image_dice,
        val_images=result.val_images,
        finished_at=now(),
        **base,
    )
