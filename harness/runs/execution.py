"""Runs: resolve what the user asked for into a benchmark and an entry, train each seed,
leave a record per seed, and regenerate the benchmark's leaderboard.

This is the library behind ``harness run``; everything it does can be done from Python.

A run never costs more than its last epoch and never damages what other runs wrote: it
checkpoints into ``RUN_DIR/checkpoints/`` as it trains, ``resume`` continues it from
there after a crash, a kill or a Ctrl-C (which prints the command to do so), and a run
that fails leaves a record with status ``failed`` and the reason, and no leaderboard
row. One process at a time may work in a run folder (a lock says who).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout

from harness import protocol as protocols
from harness.atomic import atomic_write_bytes, sweep_stale_temps
from harness.components.contracts import build_components, build_entry_model
from harness.components.entry import (
    KINDS_BY_FIELD,
    Component,
    Entry,
    parse_component,
    parse_hparams,
)
from harness.components.registry import Registry
from harness.components.weights import resolve_weights
from harness.data import sources
from harness.data.cache import preprocessed
from harness.data.checks import check_cached
from harness.data.layout import list_images, split
from harness.data.sources import DatasetInfo
from harness.engine import checkpoint, distributed
from harness.engine.control import Interrupted
from harness.engine.device import resolve_device
from harness.engine.distributed import World
from harness.engine.events import TrainObserver
from harness.engine.inference import TTA_CHOICES
from harness.engine.trainer import Checkpointing, Execution, Recipe, RunSpec, TrainResult, train
from harness.errors import HarnessError, RunFailed
from harness.protocol import Protocol
from harness.results.leaderboard import regenerate
from harness.results.records import (
    RECORD_NAME,
    Record,
    Unusable,
    code_revision,
    library_versions,
    read_record,
    write_record,
)
from harness.runs import tracking
from harness.runs.report import run_pictures
from harness.runs.requests import RunRequest, parse_seeds, resume_command


@dataclass
class Benchmark:
    """One dataset (by fingerprint) under one protocol (by hash): one leaderboard."""

    dataset: DatasetInfo
    protocol: Protocol
    #: The classes of the leaderboard's small-bone column, from the dataset's statistics.
    small_bones: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return (
            f"{sources.slug(self.protocol.name)}-{self.protocol.hash}"
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
            "small_bones": list(self.small_bones),
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
    resume: bool = False
    #: The request it was resolved from (for the resume command printed on Ctrl-C).
    request: RunRequest | None = None
    #: This process's place in a data-parallel run (one process: ``World()``).
    world: World = field(default_factory=World)
    #: Records a regenerated table could not use, already named to the user (once each;
    #: a sweep shares one set between its plans).
    unusable_named: set[Path] = field(default_factory=set)
    #: A tuned entry's tuning, written into each of its records (``harness.runs.tune``).
    tuning: dict[str, Any] = field(default_factory=dict)
    #: The command a Ctrl-C prints instead of this run's own ``harness run ... --resume``
    #: (a tuning's trials and finals: ``harness tune ... --resume``).
    resume_hint: str | None = None
    #: The leaderboard this plan's runs last wrote: the one in ``leaderboards_dir``, or the
    #: runs folder's own when that one is kept (``harness.results.tables.place``).
    table: Path | None = None


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
    if request.tta not in TTA_CHOICES:
        raise HarnessError(f"--tta {request.tta!r}: choose one of {', '.join(TTA_CHOICES)}")
    entry, train_proto = _entry(request, components, proto)
    seeds = parse_seeds(request.seeds, proto.seeds)  # a bad --seeds fails before any work
    # Pretrained weights found (or their absence said), and a file that does not fit the
    # encoder refused, before any data work.
    if resolve_weights(proto.encoder_weights, entry.encoder or proto.encoder).loaded_here:
        build_entry_model(proto, entry, registry)
    if request.micro_batch is not None and request.micro_batch < 1:
        raise HarnessError(f"--micro-batch {request.micro_batch}: give a positive number")
    tracking.check_track(request.track)  # a tracker not installed fails before any work
    device = resolve_device(request.device)
    world = distributed.init(device.type)  # World() unless started by torch.distributed.run
    if world.active and proto.batch_size < world.size:
        raise HarnessError(
            f"--nproc {world.size}: the protocol's batch of {proto.batch_size} cannot be shared "
            f"by {world.size} processes; use at most {proto.batch_size}"
        )
    if world.active and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    if request.data is None:
        root = sources.synthetic_dataset(
            proto.synth_ids, proto.synth_size, proto.synth_seed, progress
        )
    else:
        root = Path(request.data)
    check_cached(root, progress)  # every label file valid before any training; cached
    dataset = sources.describe(root)
    # Build every component once now, with the real step count, so a parameter a plugin
    # rejects fails before any work.
    train_images, _ = protocol_split(list_images(dataset.root, "train"), proto)
    build_components(
        train_proto,
        entry,
        registry,
        steps_per_epoch=math.ceil(len(train_images) / proto.batch_size),
    )
    # The images training reads, decoded and resized once now (under the caller's progress),
    # so training starts at once and a data-parallel run's ranks find them ready.
    preprocessed(dataset.root, proto.resolution, progress=progress)
    return Plan(
        registry=registry,
        benchmark=Benchmark(dataset, proto, small_bone_set(dataset)),
        entry=entry,
        seeds=seeds,
        device=device,
        runs_dir=Path(request.runs_dir),
        leaderboards_dir=Path(request.leaderboards_dir),
        resume=request.resume,
        request=request,
        world=world,
    )


def protocol_split(images: Sequence[Path], proto: Protocol) -> tuple[list[Path], list[Path]]:
    """The protocol's training and validation images (its fold, its excluded folds)."""
    return split(images, proto.folds, proto.fold, proto.exclude_folds)


def _entry(
    request: RunRequest, components: dict[str, Component], proto: Protocol
) -> tuple[Entry, Protocol]:
    """The entry, and the protocol it trains under (with its own ``--hparam`` values, which
    the protocol's checks must accept)."""
    entry = Entry(
        **components,
        encoder=request.encoder,
        tta=request.tta,
        hparams=parse_hparams(request.hparams),
        tuned=request.tuned,
    )
    if entry.tuned and not entry.hparams:
        raise HarnessError("--tuned: says a tuning budget chose --hparam values; give them")
    try:
        return entry, entry.protocol_for(proto)
    except HarnessError as exc:
        raise HarnessError(f"--hparam: {exc}") from None


def small_bone_set(dataset: DatasetInfo) -> tuple[str, ...]:
    """The small-bone classes of ``dataset`` by ``harness.data.stats``'s rule, by fingerprint.

    The first run on a dataset measures it (``harness data stats``; the report and its plots
    stay in the cache folder); later runs read the cached set.
    """
    from harness.data.stats import JSON_NAME, compute_stats, write_report

    folder = sources.cache_dir() / "stats" / dataset.fingerprint
    try:
        report = json.loads((folder / JSON_NAME).read_text(encoding="utf-8"))
        return tuple(report["small_bones"]["classes"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    write_report(compute_stats(dataset.root), folder)
    return tuple(
        json.loads((folder / JSON_NAME).read_text(encoding="utf-8"))["small_bones"]["classes"]
    )


def run_dir(plan: Plan, seed: int) -> Path:
    """``RUNS/<benchmark>/<entry slug>-<hash>/seed-N``: every part a plain name, so it stays inside.

    The parts come from ``slug()`` (letters, digits, hyphens) and hex digits, so nothing a
    plugin, protocol or entry label says can climb out of ``runs_dir``; checked anyway.
    """
    key = hashlib.sha256(plan.entry.key.encode()).hexdigest()[:8]
    name = sources.slug(plan.entry.label)[:60]
    parts = (plan.benchmark.id, f"{name}-{key}", f"seed-{int(seed)}")
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\0" in part:
            raise HarnessError(f"run folder name {part!r} is not a plain name; report this bug")
    return plan.runs_dir.joinpath(*parts)


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
    out["tta"] = plan.entry.tta
    out.update(plan.entry.extras())  # hparams, tuned: only an entry that has them
    out["effective_encoder"] = plan.entry.encoder or plan.benchmark.protocol.encoder
    # What the encoder started from: a name, or a file by path and SHA-256.
    out["encoder_weights"] = resolve_weights(
        plan.benchmark.protocol.encoder_weights, out["effective_encoder"]
    ).to_record()
    return out


#: The final epoch's weights (what the record's Dice measured), beside ``record.json``.
WEIGHTS_NAME = "weights-final.safetensors"


def save_weights(path: Path, model: Any) -> None:
    """Model weights as safetensors (never pickle), written atomically (temp, fsync, rename)."""
    atomic_write_bytes(Path(path), checkpoint.weights_bytes(model.state_dict()))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def execute(
    plan: Plan,
    observer: TrainObserver,
    on_result: Callable[[int, TrainResult], None] | None = None,
) -> list[tuple[Path, Record]]:
    """Train every seed of the plan; write a record per seed and regenerate the leaderboard.

    A seed that fails leaves a ``failed`` record and raises ``RunFailed`` (or the
    ``HarnessError`` of a plugin that broke its contract); nothing else is touched. A
    failed or stopped rerun of a seed that had succeeded keeps the succeeded record instead.
    Progress and every line for the user go to ``observer``.
    """
    proto = plan.benchmark.protocol
    images = list_images(plan.benchmark.dataset.root, "train")
    train_images, val_images = protocol_split(images, proto)
    for seed in plan.seeds:
        folder = run_dir(plan, seed)
        # In a data-parallel run the main rank holds the folder and writes; the others train.
        lock = _run_lock(folder) if plan.world.is_main else contextlib.nullcontext()
        with lock:
            _execute_seed(plan, seed, folder, observer, train_images, val_images, on_result)
    return plan.outcomes


def regenerate_table(plan: Plan, observer: TrainObserver) -> Path | None:
    """Regenerate the plan's leaderboard; each record it cannot use is named once, one line.
    The path written is kept on the plan (``Plan.table``)."""
    path = regenerate(
        plan.benchmark.id,
        plan.runs_dir,
        plan.leaderboards_dir,
        report=lambda unusable: name_unusable(plan, unusable, observer),
        say=observer.message,
    )
    plan.table = path or plan.table
    return path


def name_unusable(plan: Plan, unusable: Unusable, observer: TrainObserver) -> None:
    """Say, once per plan, that a record cannot be used and is left out of its table."""
    if unusable.path not in plan.unusable_named:
        plan.unusable_named.add(unusable.path)
        observer.message(f"warning: {unusable}; left out of its table")


@contextlib.contextmanager
def _run_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder`` for this process; a second process on the same run is refused.

    The lock is an OS file lock, released by the kernel when its holder dies (kill -9).
    """
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / ".lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise HarnessError(
            f"{folder}: another harness process is running this run (lock {folder / '.lock'}); "
            "wait for it to finish or stop it"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _run_id(plan: Plan, seed: int) -> dict[str, Any]:
    """What a checkpoint must belong to: this benchmark, this entry, this seed."""
    return {"benchmark": plan.benchmark.id, "entry": plan.entry.key, "seed": int(seed)}


def _execute_seed(
    plan: Plan,
    seed: int,
    folder: Path,
    observer: TrainObserver,
    train_images: Sequence[Path],
    val_images: Sequence[Path],
    on_result: Callable[[int, TrainResult], None] | None,
) -> None:
    ckpt_dir = checkpoint.directory(folder)
    world = plan.world
    prepared: _Prepared | str | None
    if world.is_main:
        try:
            prepared = _prepare(plan, seed, folder, observer)
        except HarnessError as exc:
            prepared = str(exc)
    else:
        prepared = None
    if world.active:  # every rank does what the main rank decided, or stops with it
        prepared = distributed.broadcast_object(prepared, world)
    if isinstance(prepared, str):
        error = HarnessError(prepared)
        error.echoed = not world.is_main  # the main rank says it; the others only stop
        raise error
    if prepared is None or prepared.done:
        return
    resume_from = None
    if prepared.resume:
        # The main rank reads the checkpoint and hands it to the others, so ranks on other
        # machines need no shared runs folder.
        resume_from = checkpoint.load(ckpt_dir, "last") if world.is_main else None
        if world.active:
            resume_from = distributed.broadcast_object(resume_from, world)
        if resume_from is None:
            raise HarnessError(f"{ckpt_dir}: the checkpoint to resume from disappeared")
    if world.is_main:  # metrics.jsonl, and the event files of --track
        observer = _tracked(plan, folder, observer, resume_from, val_images)
    outcome = _SeedOutcome(plan, seed, folder, observer, prepared.resumes, prepared.started)
    result = _train_seed(plan, seed, outcome, train_images, val_images, resume_from)
    if outcome.main:
        outcome.succeeded(result, val_images)
        if on_result is not None:
            on_result(seed, result)


def _tracked(
    plan: Plan,
    folder: Path,
    observer: TrainObserver,
    resume_from: checkpoint.Checkpoint | None,
    val_images: Sequence[Path],
) -> TrainObserver:
    """``observer`` with the seed's trackers (``harness.runs.tracking``)."""
    track = plan.request.track if plan.request else None
    proto = plan.benchmark.protocol
    preview = None
    if track and val_images:
        preview = tracking.Preview(val_images[0], proto.resolution, proto.threshold)
    about = {"benchmark": plan.benchmark.to_dict(), "entry": entry_record(plan)}
    texts = {k: "    " + json.dumps(v, indent=2).replace("\n", "\n    ") for k, v in about.items()}
    resumed = resume_from.state if resume_from is not None else None
    return tracking.seed_observer(
        observer, folder, resumed=resumed, track=track, texts=texts, preview=preview
    )


@dataclass
class _Prepared:
    """What the main rank found in a run folder before training: plain values, broadcastable."""

    done: bool = False  # already succeeded (``resume``): nothing to train
    resume: bool = False  # continue from the ``last`` checkpoint
    resumes: list[dict[str, Any]] = field(default_factory=list)
    started: str = ""


def _prepare(plan: Plan, seed: int, folder: Path, observer: TrainObserver) -> _Prepared:
    """Sweep stale temps, decide between skip, resume and a fresh start; refuse what is unsafe."""
    proto = plan.benchmark.protocol
    path = folder / RECORD_NAME
    ckpt_dir = checkpoint.directory(folder)
    for place in (folder, ckpt_dir):  # half-written files of a process killed here before
        sweep_stale_temps(place)
    existing = read_record(path)
    started = _now()
    if plan.resume:
        if existing is not None and existing.status == "succeeded":
            observer.message(
                f"seed {seed}: already succeeded (mean Dice {existing.mean_dice:.4f}); "
                f"nothing to resume. Record: {path}"
            )
            plan.outcomes.append((path, existing))
            # Same records, same bytes: this only repairs a table a kill left behind.
            regenerate_table(plan, observer)
            return _Prepared(done=True)
        return _resumed(seed, ckpt_dir, started, observer)
    if checkpoint.exists(ckpt_dir) and existing is None:
        ckpt = checkpoint.load_state(checkpoint.paths(ckpt_dir, "last")[0])
        where = f"epoch {ckpt['epoch']} of {proto.epochs} done"
        command = resume_command(plan.request) if plan.request else "resume=True"
        raise HarnessError(
            f"{ckpt_dir}: an interrupted run of seed {seed} left a checkpoint here ({where}); "
            f"continue it with `{command}`, or delete that folder to start over"
        )
    if ckpt_dir.exists():
        checkpoint.discard(ckpt_dir)  # a finished or failed run's: this run starts afresh
    return _Prepared(started=started)


def _resumed(seed: int, ckpt_dir: Path, started: str, observer: TrainObserver) -> _Prepared:
    """A resume of ``seed``: from its ``last`` checkpoint, or from the beginning if none."""
    resume_from = checkpoint.load(ckpt_dir, "last")
    if resume_from is None:
        observer.message(f"seed {seed}: no checkpoint in {ckpt_dir}; starting from the beginning")
        return _Prepared(started=started)
    resumes = [
        *resume_from.state.get("resumes", []),
        {"epoch": resume_from.epoch, "batch": resume_from.batch, "at": started},
    ]
    observer.message(f"seed {seed}: resuming from {resume_from.describe()} ({resume_from.path})")
    return _Prepared(
        resume=True,
        resumes=resumes,
        started=str(resume_from.state.get("started_at", started)),
    )


class _SeedOutcome:
    """What one seed leaves in its run folder: a failed or succeeded record, the final
    weights and pictures. Only the main rank of a data-parallel run writes (``main``)."""

    def __init__(
        self,
        plan: Plan,
        seed: int,
        folder: Path,
        observer: TrainObserver,
        resumes: list[dict[str, Any]],
        started: str,
    ) -> None:
        self.plan = plan
        self.seed = seed
        self.path = folder / RECORD_NAME
        self.ckpt_dir = checkpoint.directory(folder)
        self.observer = observer
        self.main = plan.world.is_main
        self.resumes = resumes
        self.started = started
        #: The fields every record of this seed has, whatever the outcome (taken before training).
        self.base: dict[str, Any] = {
            "seed": seed,
            "benchmark": plan.benchmark.to_dict(),
            "entry": entry_record(plan),
            "versions": library_versions(),
            "code_revision": code_revision(),
            "started_at": started,
            "resumes": resumes,
            "tuning": plan.tuning,
        }
        self.t0 = time.perf_counter()

    def kept_earlier(self, outcome: str) -> bool:
        """A rerun that fails or stops never costs a result: a succeeded record and its
        weights stay. The rerun's checkpoints go: --resume skips a succeeded seed, so
        nothing would continue them, and best.* would no longer match the record."""
        earlier = read_record(self.path)
        if earlier is None or earlier.status != "succeeded":
            return False
        checkpoint.discard(self.ckpt_dir)
        self.observer.message(
            f"seed {self.seed}: this rerun {outcome}; the earlier succeeded record (mean Dice "
            f"{earlier.mean_dice:.4f}) and its weights-final are kept: {self.path}"
        )
        return True

    def failed(self, reason: str) -> None:
        """A ``failed`` record saying ``reason`` (unless an earlier success is kept)."""
        if not self.main or self.kept_earlier("failed"):
            return
        record = Record(
            status="failed",
            mean_dice=None,
            per_class_dice={},
            error=reason,
            cost={"wall_s": time.perf_counter() - self.t0, "device": str(self.plan.device)},
            finished_at=_now(),
            **self.base,
        )
        write_record(self.path, record)
        self.plan.outcomes.append((self.path, record))

    def stopped(self, exc: KeyboardInterrupt) -> None:
        """Say where a Ctrl-C stopped the seed and how to resume it (main rank only)."""
        if self.main and not self.kept_earlier("was stopped"):
            _report_interrupt(self.plan, self.seed, self.ckpt_dir, exc, self.observer)

    def succeeded(self, result: TrainResult, val_images: Sequence[Path]) -> None:
        """The record, the final weights, the leaderboard and the pictures of a finished seed."""
        plan = self.plan
        record = _succeeded_record(result, plan.world.size, self.base)
        save_weights(self.path.parent / WEIGHTS_NAME, result.model)
        write_record(self.path, record)
        # The resume state (weights and optimizer, twice the model) is spent once the record
        # says succeeded: weights-final holds the same weights, and best.* stays.
        checkpoint.retire(self.ckpt_dir, "last")
        plan.outcomes.append((self.path, record))
        regenerate_table(plan, self.observer)
        proto = plan.benchmark.protocol
        run_pictures(  # after the record: a picture never costs a result
            self.path.parent,
            result.history,
            result.per_class_dice,
            model=result.model,
            image_path=val_images[0] if val_images else None,
            resolution=proto.resolution,
            threshold=proto.threshold,
        )


def _succeeded_record(result: TrainResult, processes: int, base: dict[str, Any]) -> Record:
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
            "peak_memory_mb": result.peak_memory_mb,
            "wall_s": result.wall_s,
            "device_hours": result.wall_s / 3600 * processes,
            "device": result.device,
            **result.execution,
        },
        history=result.history,
        per_image_dice=result.per_image_dice,
        val_images=result.val_images,
        finished_at=_now(),
        **base,
    )


def _train_seed(
    plan: Plan,
    seed: int,
    outcome: _SeedOutcome,
    train_images: Sequence[Path],
    val_images: Sequence[Path],
    resume_from: checkpoint.Checkpoint | None,
) -> TrainResult:
    """Train one seed; a failure leaves its record (``outcome``) and raises, a stop says how
    to resume and raises."""
    request = plan.request
    try:
        recipe = Recipe(plan.entry.protocol_for(plan.benchmark.protocol), plan.entry, plan.registry)
        return train(
            RunSpec(recipe, seed, train_images, val_images),
            Execution(
                plan.device,
                plan.world,
                micro_batch=request.micro_batch if request else None,
                compile=request.compile if request else False,
            ),
            observer=outcome.observer,
            checkpointing=Checkpointing(
                outcome.ckpt_dir if outcome.main else None,
                resume_from,
                run_id=_run_id(plan, seed),
                extra_state={"resumes": outcome.resumes, "started_at": outcome.started},
            ),
        )
    except KeyboardInterrupt as exc:
        outcome.stopped(exc)
        raise
    except checkpoint.CheckpointError:
        raise  # a checkpoint that cannot be used: nothing was run, nothing is written
    except HarnessError as exc:
        outcome.failed(str(exc))
        raise
    except RunFailed as exc:
        outcome.failed(str(exc))
        # Said by the main rank alone: the other ranks' copies stay quiet.
        message = f"seed {seed} failed: {exc} (record: {outcome.path})"
        raise RunFailed(message, echoed=exc.echoed) from exc
    except Exception as exc:
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        outcome.failed(reason)
        raise RunFailed(f"seed {seed} failed: {reason} (record: {outcome.path})") from exc


def _report_interrupt(
    plan: Plan, seed: int, ckpt_dir: Path, exc: KeyboardInterrupt, observer: TrainObserver
) -> None:
    """Say where an interrupted seed stopped, what was saved and the command to continue."""
    if isinstance(exc, Interrupted) and exc.checkpoint is not None:
        saved = f"stopped at {exc.where}; checkpoint saved: {exc.checkpoint}"
    elif checkpoint.exists(ckpt_dir):
        saved = f"stopped; last checkpoint: {checkpoint.paths(ckpt_dir, 'last')[0]}"
    else:
        saved = "stopped before the first checkpoint; the resume starts from the beginning"
    command = plan.resume_hint or (
        resume_command(plan.request) if plan.request else "execute() with plan.resume=True"
    )
    observer.message(f"seed {seed}: {saved}\nResume with:\n  {command}")
    exc.resume_said = True  # type: ignore[attr-defined]  # a caller need not say it again
