"""Planning: a request becomes a plan, in two steps.

``Planner.resolve`` is pure and cheap: it reads the plugins, the protocol and its overrides,
checks every component name and parameter text, the entry's own hyperparameters, the seeds
and the launch settings (``harness.runs.settings``: device, precision, ... resolved once,
``--nproc`` bounded by this machine's GPUs unless the chosen executor trains elsewhere), and
fails with one line on bad input; it touches no data. ``Planner.prepare`` does
the heavy part, once per command whatever the number of plans: the dataset (the phantom
generated, every label file checked, the fingerprint, the small-bone set, the images
decoded at the protocol's resolution), the encoder weights, and each entry's components
built once with the real step count, so that a parameter a plugin rejects fails before any
training. ``plan(request)`` does both for one request.

A ``Plan`` is one entry on one benchmark with its seeds and folders: everything the
dispatcher (``harness.runs.dispatch``) needs to decide, for each seed, whether it trains,
resumes or is skipped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness import protocol as protocols
from harness.components.contracts import build_components, build_entry_model
from harness.components.entry import (
    KINDS_BY_FIELD,
    Component,
    Entry,
    parse_component,
)
from harness.components.kinds import TRAINING_KINDS
from harness.components.registry import Registry
from harness.components.weights import EncoderWeights, resolve_weights
from harness.data import sources
from harness.data.cache import preprocessed
from harness.data.checks import check_cached
from harness.data.layout import list_images, split
from harness.data.sources import DatasetInfo
from harness.engine.distributed import World
from harness.engine.inference import TTA_CHOICES
from harness.errors import HarnessError
from harness.protocol import Protocol
from harness.results.records import Record
from harness.runs import settings
from harness.runs.requests import ResumeHint, RunRequest
from harness.runs.settings import LaunchSettings

Progress = Callable[[int, int], None]


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


@dataclass(frozen=True)
class Resolved:
    """A request resolved without touching data: the protocol, the entry, the seeds."""

    request: RunRequest
    registry: Registry
    #: The benchmark's protocol (with ``--set`` and the request's overrides).
    protocol: Protocol
    entry: Entry
    seeds: tuple[int, ...]
    #: How its runs train here (device, precision, ...), resolved once.
    launch: LaunchSettings
    world: World


@dataclass
class Plan:
    """A resolved and prepared request: everything needed to start training."""

    registry: Registry
    benchmark: Benchmark
    entry: Entry
    seeds: list[int]
    #: How its runs train here: device, precision, micro-batch, compile, trackers, processes.
    launch: LaunchSettings
    #: The request it was resolved from (what another process plans again: ``JobSpec``).
    request: RunRequest
    runs_dir: Path
    leaderboards_dir: Path
    #: The command that continues its runs, said on a Ctrl-C, a refusal or a full disk: its
    #: own ``harness run ... --resume``, or a tuning's (trials and finals: ``harness tune``).
    resume_hint: ResumeHint
    outcomes: list[tuple[Path, Record]] = field(default_factory=list)
    resume: bool = False
    #: This process's place in a data-parallel run (one process: ``World()``).
    world: World = field(default_factory=World)
    #: Records a regenerated table could not use, already named to the user (once each;
    #: a sweep shares one set between its plans).
    unusable_named: set[Path] = field(default_factory=set)
    #: A tuned entry's tuning, written into each of its records (``harness.studies.tune``).
    tuning: dict[str, Any] = field(default_factory=dict)
    #: The leaderboard this plan's runs last wrote: the one in ``leaderboards_dir``, or the
    #: runs folder's own when that one is kept (``harness.results.tables.place``).
    table: Path | None = None
    #: What the encoder starts from (resolved once, when the plan was prepared).
    weights: EncoderWeights | None = None
    #: Said when this plan's first run starts in this process (``sweep loss = dice``).
    title: str | None = None
    #: What carries its runs out (``Executor.name``, set by the dispatcher; a worker's plan
    #: from its ``JobSpec``): each record names it (``cost.executor``).
    executor: str = "in-process"

    @property
    def device(self) -> torch.device:
        """The device its runs train on here (``launch.device``)."""
        return self.launch.device

    @property
    def folds(self) -> tuple[int | None, ...]:
        """The folds its runs train on: each of a cross-validated benchmark's, else the
        protocol's own (``None``)."""
        return self.benchmark.protocol.cv_folds or (None,)


@dataclass(frozen=True)
class PreparedData:
    """A dataset made ready for one resolution: where it is, what it is, its small bones."""

    dataset: DatasetInfo
    small_bones: tuple[str, ...]


class Planner:
    """Resolves requests into plans for one command; each dataset, registry and encoder
    weight is prepared once, however many plans share it (``preparations`` counts them).

    ``remote``: the executor chosen for the command trains its runs elsewhere
    (``harness.runs.executors``, ``Executor.remote``): this machine's GPUs then bound no run.
    """

    def __init__(self, progress: Progress | None = None, remote: bool = False) -> None:
        self.progress = progress
        self.remote = remote
        self._registries: dict[tuple[str, ...], Registry] = {}
        self._data: dict[tuple[Any, ...], PreparedData] = {}
        self._weights: dict[tuple[str, str], EncoderWeights] = {}
        self._checked: set[tuple[Any, ...]] = set()
        #: Datasets prepared by this planner (for tests: one per command).
        self.preparations = 0

    def plan(self, request: RunRequest) -> Plan:
        """``resolve`` then ``prepare``: one request, ready to dispatch."""
        return self.prepare(self.resolve(request))

    def registry(self, plugins: Sequence[str]) -> Registry:
        key = tuple(plugins)
        if key not in self._registries:
            self._registries[key] = Registry.load(key)
        return self._registries[key]

    def resolve(self, request: RunRequest) -> Resolved:
        """Names, protocol, entry, seeds and launch settings (device, precision, ...)
        checked; one clear line on bad input."""
        request.launch.check()
        registry = self.registry(request.plugins)
        choice = request.benchmark
        proto = protocols.load(choice.protocol).derive(list(choice.sets))
        proto = _cross_validated(proto.with_values(choice.overrides), request)
        components = _components(request, proto, registry)
        tta = request.entry.tta
        if tta not in TTA_CHOICES:
            raise HarnessError(f"--tta {tta!r}: choose one of {', '.join(TTA_CHOICES)}")
        entry = _entry(request, components, proto)
        seeds = choice.seeds or tuple(proto.seeds)
        weights = self.weights(proto.encoder_weights, entry.encoder or proto.encoder)
        # Pretrained weights found (or their absence said), and a file that does not fit the
        # encoder refused, before any data work.
        if weights.loaded_here:
            build_entry_model(proto, entry, registry)
        launch, world = settings.resolve(request, proto, self.remote)
        # Another precision is another measurement: its own identity, folder and row.
        precision = launch.precision.name
        entry = dataclasses.replace(entry, precision=None if precision == "fp32" else precision)
        return Resolved(request, registry, proto, entry, tuple(seeds), launch, world)

    def weights(self, spec: str, encoder: str) -> EncoderWeights:
        """``resolve_weights``, once per weights and encoder in this command."""
        if (spec, encoder) not in self._weights:
            self._weights[(spec, encoder)] = resolve_weights(spec, encoder)
        return self._weights[(spec, encoder)]

    def prepare(self, resolved: Resolved) -> Plan:
        """The dataset ready (once per command), the entry's components built once with the
        real step count (a parameter a plugin rejects fails here), the plan."""
        request, proto, entry = resolved.request, resolved.protocol, resolved.entry
        data = self.data(request.benchmark.data, proto)
        train_images, _ = protocol_split(list_images(data.dataset.root, "train"), proto)
        key = (entry.key, proto.hash, len(train_images))
        if key not in self._checked:
            build_components(
                entry.protocol_for(proto),
                entry,
                resolved.registry,
                steps_per_epoch=math.ceil(len(train_images) / proto.batch_size),
            )
            self._checked.add(key)
        self.decoded(data.dataset, proto.resolution)
        return Plan(
            registry=resolved.registry,
            benchmark=Benchmark(data.dataset, proto, data.small_bones),
            entry=entry,
            seeds=list(resolved.seeds),
            launch=resolved.launch,
            request=request,
            runs_dir=Path(request.launch.runs_dir),
            leaderboards_dir=request.launch.tables_dir,
            resume_hint=ResumeHint(request),
            resume=request.launch.resume,
            world=resolved.world,
            weights=self.weights(proto.encoder_weights, entry.encoder or proto.encoder),
        )

    def data(self, data: Path | None, proto: Protocol) -> PreparedData:
        """The dataset of ``data`` (None: the protocol's phantom) made, checked and
        described: once per command."""
        synth = (proto.synth_ids, proto.synth_size, proto.synth_seed)
        key = (None, synth) if data is None else (Path(data).resolve(), ())
        if key not in self._data:
            self._data[key] = self._prepare_data(data, proto)
        return self._data[key]

    def _prepare_data(self, data: Path | None, proto: Protocol) -> PreparedData:
        self.preparations += 1
        progress = self.progress
        if data is None:
            root = sources.synthetic_dataset(
                proto.synth_ids, proto.synth_size, proto.synth_seed, progress
            )
        else:
            root = Path(data)
        check_cached(root, progress)  # every label file valid before any training; cached
        dataset = sources.describe(root)
        return PreparedData(dataset, small_bone_set(dataset))

    def decoded(self, dataset: DatasetInfo, resolution: int) -> None:
        """The images training reads, decoded and resized once now (under the caller's
        progress), so training starts at once and a data-parallel run's ranks find them
        ready; once per dataset and resolution in this command."""
        key = ("decoded", dataset.fingerprint, resolution)
        if key not in self._checked:
            preprocessed(dataset.root, resolution, progress=self.progress)
            self._checked.add(key)


def plan(request: RunRequest, progress: Progress | None = None, remote: bool = False) -> Plan:
    """Resolve and prepare one request (``Planner``); fail with one clear line on bad input."""
    return Planner(progress, remote).plan(request)


def _cross_validated(proto: Protocol, request: RunRequest) -> Protocol:
    """The protocol of ``--folds`` (``cv_folds`` set: a benchmark of its own), checked
    before any data work: folds of the protocol, not with ``--set fold=``, none left empty
    by the split."""
    folds = request.benchmark.folds
    if folds is None:
        return proto
    if any(s.partition("=")[0].strip() == "fold" for s in request.benchmark.sets):
        raise HarnessError(
            "--folds with --set fold=...: --folds names the folds to train on; leave out --set fold"
        )
    chosen = tuple(range(proto.folds)) if folds == "all" else tuple(folds)
    chosen = tuple(f for f in chosen if f not in proto.exclude_folds or folds != "all")
    bad = [f for f in chosen if not 0 <= f < proto.folds]
    if bad:
        raise HarnessError(
            f"--folds {','.join(map(str, chosen))}: fold {bad[0]} is not one of the protocol's "
            f"folds 0..{proto.folds - 1}"
        )
    ids = _id_folders(request.benchmark.data, proto)
    if ids is not None and ids < proto.folds:
        raise HarnessError(
            f"--folds: {request.benchmark.data} has {ids} ID folders, so the protocol's "
            f"{proto.folds}-fold split leaves a fold empty; use a protocol with at most {ids} "
            "folds (--set folds=N)"
        )
    return proto.with_values([("cv_folds", chosen)])


def _id_folders(data: Path | None, proto: Protocol) -> int | None:
    """How many ID folders the split groups by (the phantom's from its protocol)."""
    if data is None:
        return proto.synth_ids
    folder = Path(data) / "train" / "DCM"
    return sum(1 for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else None


def _components(request: RunRequest, proto: Protocol, registry: Registry) -> dict[str, Component]:
    """Each component of the entry parsed and known to the registry (unknown names fail)."""
    components: dict[str, Component] = {}
    for kind in TRAINING_KINDS:
        # An entry names every kind but the protocol's defaults (optimizer, scheduler,
        # augmentation), which the protocol names.
        text = getattr(request.entry, kind.field) or getattr(proto, kind.field, "")
        component = parse_component(text, kind.option)
        registry.check(kind.plural, component)  # unknown names, impossible parameters fail
        components[kind.field] = component
    return components


def protocol_split(images: Sequence[Path], proto: Protocol) -> tuple[list[Path], list[Path]]:
    """The protocol's training and validation images (its fold, its excluded folds)."""
    return split(images, proto.folds, proto.fold, proto.exclude_folds)


def _entry(request: RunRequest, components: dict[str, Component], proto: Protocol) -> Entry:
    """The entry (with its own ``--hparam`` values, which the protocol's checks must accept)."""
    entry = Entry(
        **components,
        encoder=request.entry.encoder,
        tta=request.entry.tta,
        hparams=tuple(request.entry.hparams),
        tuned=request.entry.tuned,
    )
    if entry.tuned and not entry.hparams:
        raise HarnessError("--tuned: says a tuning budget chose --hparam values; give them")
    try:
        entry.protocol_for(proto)
    except HarnessError as exc:
        raise HarnessError(f"--hparam: {exc}") from None
    return entry


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


def run_dir(plan: Plan, seed: int, fold: int | None = None) -> Path:
    """``RUNS/<benchmark>/<entry slug>-<hash>/seed-N`` (``fold-K-seed-N`` for a fold of a
    cross-validated benchmark): every part a plain name, so it stays inside.

    The parts come from ``slug()`` (letters, digits, hyphens) and hex digits, so nothing a
    plugin, protocol or entry label says can climb out of ``runs_dir``; checked anyway.
    """
    key = hashlib.sha256(plan.entry.key.encode()).hexdigest()[:8]
    name = sources.slug(plan.entry.label)[:60]
    run = f"seed-{int(seed)}" if fold is None else f"fold-{int(fold)}-seed-{int(seed)}"
    parts = (plan.benchmark.id, f"{name}-{key}", run)
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
    weights = plan.weights or resolve_weights(
        plan.benchmark.protocol.encoder_weights, out["effective_encoder"]
    )
    out["encoder_weights"] = weights.to_record()
    return out
