"""``harness select``: which ensemble, test-time augmentation and post-processing to ship,
chosen on cross-validation from the runs' kept predictions.

nnU-Net's ``find_best_configuration`` ranks its configurations and every pair ensemble by
cross-validated Dice from saved out-of-fold predictions, then keeps a post-processing step
only where it helps. This does it for any plugin, under the verdicts of every table:

1. The **members** are the entries of one cross-validated benchmark whose runs kept their
   validation probabilities (``harness run --folds all --keep-predictions``;
   ``harness.results.predictions``): every entry there, or those named.
2. Every **configuration** is scored on the folds' validation images only, each image by the
   runs that did not train on it: every entry and every ensemble of up to ``max_members``
   entries (their probabilities averaged, as ``harness predict`` averages them), under every
   kept test-time augmentation, with every post-processor (``harness_postprocessors``).
3. The **post-processing rule**: a post-processor is kept for a class only where it raises
   that class's Dice over all the folds' images and lowers it on no fold; every other class
   keeps its masks, so no class gets worse (``kept_classes``).
4. The rows are ranked by cross-validated Dice (the mean over folds, as a cross-validated
   leaderboard's) and judged by the leaderboards' rules (``harness.results.judging``), with
   each configuration's cost at inference; the table is published like every table
   (``harness.results.publish``) as ``<benchmark>.select.md``, with its twin and page.
5. The **held-out test images**, where the dataset has labelled ones and the runs folder has
   the runs' weights, are scored once, for the chosen configuration (#1) alone.

Same records and predictions, same bytes. Nothing here trains or needs a GPU.
"""

from __future__ import annotations

import itertools
import shlex
import statistics
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.classes import CLASSES
from harness.components.entry import Entry
from harness.components.registry import Registry
from harness.errors import HarnessError, visible
from harness.results.judging import judge_units
from harness.results.noise import Unit
from harness.results.predictions import Kept
from harness.results.publish import publish
from harness.results.records import Record, Unusable, scan_records
from harness.results.rows import entry_of
from harness.results.significance import verdict
from harness.results.speed import inference_figure
from harness.results.tables import Say

if TYPE_CHECKING:  # torch: imported when the post-processors are built
    from harness.components.contracts import Postprocessing

#: The table beside the benchmark's leaderboard: ``<benchmark>.select.md``.
SUFFIX = ".select.md"
#: Progress: (done, total) images scored.
Progress = Callable[[int, int], None]
#: The rule, as the table, its twin and ``docs/usage.md`` state it.
RULE = (
    "a post-processor is kept for a class only where it raises that class's Dice over all the "
    "folds' validation images and lowers it on no fold; every other class keeps its masks, so "
    "no class gets worse"
)


@dataclass(frozen=True)
class SelectRequest:
    """What ``harness select`` was asked: the benchmark, its entries (folder names, or
    folders; none: every entry with kept predictions), the largest ensemble, the test-time
    augmentations and post-processors to try (None: every one kept / installed; ``none`` is
    always tried), where the runs and tables are, the dataset (None: the built-in phantom the
    benchmark names), and extra plugins."""

    benchmark: str
    entries: tuple[str, ...] = ()
    max_members: int = 2
    tta: tuple[str, ...] | None = None
    postprocessors: tuple[str, ...] | None = None
    runs_dir: Path = Path("runs")
    leaderboards_dir: Path | None = None
    data: Path | None = None
    plugins: tuple[str, ...] = ()

    @property
    def table(self) -> Path:
        folder = self.leaderboards_dir or Path(self.runs_dir) / "leaderboards"
        return Path(folder) / f"{self.benchmark}{SUFFIX}"

    def check(self) -> None:
        """What is wrong before anything is read: one line."""
        if self.max_members < 1:
            raise HarnessError(
                f"--max-members {self.max_members}: give at least 1 (1: each entry alone, "
                "2: and every pair of entries)"
            )


# -- the members ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One run of a member: its record, its kept predictions, and its record's path inside
    the runs folder."""

    record: Record
    kept: Kept
    path: str

    @property
    def fold(self) -> int:
        """The fold it validated on: its own, or (not cross-validated) the protocol's."""
        return fold_of(self.record)


def fold_of(record: Record) -> int:
    """The fold a run validated on: a cross-validated run's, else its protocol's ``fold``."""
    if record.fold is not None:
        return int(record.fold)
    return int(record.benchmark.get("protocol", {}).get("fields", {}).get("fold", 0))


@dataclass(frozen=True)
class Member:
    """An entry of the benchmark, by its folder name, with the runs of each fold."""

    folder: str
    entry: Entry
    runs: tuple[Run, ...]
    name: str = ""

    def on(self, fold: int) -> list[Run]:
        return [r for r in self.runs if r.fold == fold]

    @property
    def images_per_s(self) -> float | None:
        """One of its runs' inference images/s (the mean over its runs), each the figure a
        table shows for its record: a quiet pass's where there is one (``harness cost``),
        else the run's own (``harness.results.speed.inference_figure``)."""
        figures = [inference_figure(r.record) for r in self.runs]
        known = [f.value for f in figures if f is not None and f.value > 0]
        return statistics.fmean(known) if len(known) == len(figures) else None


@dataclass(frozen=True)
class Found:
    """The members, the benchmark as their records hold it, the folds, and what was left out
    (records that cannot be used; entries without kept predictions on every fold)."""

    members: tuple[Member, ...]
    benchmark: dict[str, Any]
    folds: tuple[int, ...]
    excluded: tuple[Unusable, ...] = ()
    left_out: tuple[tuple[str, str], ...] = ()


def find_members(request: SelectRequest) -> Found:
    """The benchmark's entries with kept predictions on every fold, as ``request`` names them;
    one line naming the culprit for a benchmark without records or kept predictions, an entry
    of another benchmark or not there, or predictions that do not match their records."""
    runs_dir = Path(request.runs_dir)
    if not runs_dir.is_dir():
        raise HarnessError(f"--runs-dir {visible(runs_dir)}: no such folder")
    found, unusable = scan_records(runs_dir)
    mine = [
        (p, r)  # in the runs layout: <benchmark>/<entry>/<run>/record.json
        for p, r in found
        if r.benchmark_id == request.benchmark and len(p.relative_to(runs_dir).parts) == 4
    ]
    if not mine:
        raise HarnessError(_no_benchmark(request.benchmark, runs_dir, found))
    wanted = _wanted(request, {p.relative_to(runs_dir).parts[1] for p, _ in mine})
    by_entry: dict[str, list[tuple[Path, Record]]] = {}
    for path, record in mine:
        folder = path.relative_to(runs_dir).parts[1]
        if record.status == "succeeded" and (not wanted or folder in wanted):
            by_entry.setdefault(folder, []).append((path, record))
    folds = _folds(mine)
    members, left_out = _members(by_entry, folds, runs_dir, bool(wanted))
    if not members:
        raise HarnessError(
            f"{request.benchmark}: no entry under {visible(runs_dir)} kept its predictions on "
            "every fold; train its entries with --folds all --keep-predictions (harness run or "
            "sweep), then select"
        )
    bench = _with_fields(mine[0][1].benchmark)
    excluded = tuple(u for u in unusable if u.benchmark == request.benchmark)
    return Found(_named(members), bench, folds, excluded, tuple(left_out))


def _no_benchmark(benchmark: str, runs_dir: Path, found: Sequence[tuple[Path, Record]]) -> str:
    there = sorted({r.benchmark_id for _, r in found})
    named = f"; benchmarks there: {', '.join(there[:5])}" if there else ""
    return f"{visible(benchmark)}: no record of this benchmark under {visible(runs_dir)}{named}"


def _wanted(request: SelectRequest, folders: set[str]) -> list[str]:
    """The entry folders named (a folder name, or a path to an entry's folder, which must be
    one of this benchmark's)."""
    wanted = []
    for given in request.entries:
        path = Path(given)
        name = path.name
        if len(path.parts) > 1 and path.parent.name != request.benchmark:
            raise HarnessError(
                f"{visible(given)}: an entry of benchmark {visible(path.parent.name)}, not "
                f"{visible(request.benchmark)}; an ensemble's members are entries of one "
                "benchmark (same protocol, same dataset)"
            )
        if name not in folders:
            raise HarnessError(
                f"ENTRY {visible(given)}: no entry of {visible(request.benchmark)} has that "
                f"folder; entries there: {', '.join(sorted(folders))}"
            )
        wanted.append(name)
    return list(dict.fromkeys(wanted))


def _folds(records: Sequence[tuple[Path, Record]]) -> tuple[int, ...]:
    """A cross-validated benchmark's folds; else the one fold its runs validated on."""
    fields = records[0][1].benchmark.get("protocol", {}).get("fields", {})
    folds = fields.get("cv_folds") or sorted({fold_of(r) for _, r in records})
    return tuple(int(f) for f in folds)


def _members(
    by_entry: Mapping[str, list[tuple[Path, Record]]],
    folds: Sequence[int],
    runs_dir: Path,
    named: bool,
) -> tuple[list[Member], list[tuple[str, str]]]:
    """Each entry with kept predictions on every fold; the others, with why (an entry that
    was named is an error)."""
    members, left_out = [], []
    for folder in sorted(by_entry):
        records = by_entry[folder]
        missing = [
            f for f in folds if not any(fold_of(r) == f and r.predictions for _, r in records)
        ]
        if missing:
            why = f"no kept predictions on fold {', '.join(map(str, missing))}"
            if named:
                raise HarnessError(
                    f"ENTRY {folder}: {why}; train it again with --keep-predictions (--resume "
                    "skips finished runs: use --rerun, or a new --runs-dir)"
                )
            left_out.append((folder, why))
            continue
        runs = tuple(
            Run(r, Kept.open(p.parent, r.predictions), p.relative_to(runs_dir).as_posix())
            for p, r in sorted(records, key=lambda pr: (fold_of(pr[1]), pr[1].seed))
            if r.predictions and fold_of(r) in folds
        )
        entry = entry_of(records[0][1])
        members.append(Member(folder, entry, runs))
    return members, left_out


def _named(members: Sequence[Member]) -> tuple[Member, ...]:
    """Each member named by what tells it from the others: the parts of its entry's label
    that differ (``unetpp``, ``fpn``), or its whole label when it is alone."""
    parts = [m.entry.label.split(" · ") for m in members]
    width = max(len(p) for p in parts)
    differing = [
        i for i in range(width) if len({p[i] if i < len(p) else "" for p in parts}) > 1
    ] or list(range(width))
    out = []
    for member, part in zip(members, parts, strict=True):
        name = " · ".join(part[i] for i in differing if i < len(part))
        out.append(Member(member.folder, member.entry, member.runs, name))
    if len({m.name for m in out}) < len(out):  # the same label twice: tell them by folder
        out = [Member(m.folder, m.entry, m.runs, m.folder) for m in out]
    return tuple(out)


def _with_fields(benchmark: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in benchmark.items() if k in ("id", "dataset", "protocol", "small_bones")}


# -- the configurations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """What is tried: the member sets, the test-time augmentations (with their passes) and
    the post-processors (``none`` first)."""

    sets: tuple[tuple[int, ...], ...]
    tta: tuple[str, ...]
    passes: Mapping[str, int]
    postprocessors: Mapping[str, Postprocessing | None]


def choices(request: SelectRequest, members: Sequence[Member], registry: Registry) -> Choice:
    """Every member set of up to ``max_members``, every test-time augmentation every member
    kept (or those asked, each checked to be kept), every post-processor installed (or those
    asked); ``none`` always."""
    from harness.components.contracts import build_postprocessing

    count = len(members)
    sets = tuple(
        s for k in range(1, min(request.max_members, count) + 1)
        for s in itertools.combinations(range(count), k)
    )  # fmt: skip
    kept = set.intersection(*(set(r.kept.tta) for m in members for r in m.runs))
    asked = request.tta if request.tta is not None else tuple(sorted(kept))
    tta = tuple(dict.fromkeys(("none", *asked)))
    for name in tta:
        if name not in kept:
            raise HarnessError(
                f"--tta {name}: not kept by every member's runs (kept: {', '.join(sorted(kept))}); "
                "runs keep every test-time augmentation installed when they train"
            )
    passes = {name: 1 if name == "none" else _passes(registry, name) for name in tta}
    names = request.postprocessors
    if names is None:
        names = tuple(registry.components("postprocessors"))
    post = {"none": None}
    for name in dict.fromkeys(names):
        if name != "none":
            post[name] = build_postprocessing(registry, name, None, "--postprocessor")
    return Choice(sets, tta, passes, post)


def _passes(registry: Registry, name: str) -> int:
    """A test-time augmentation's forward passes (its transforms), from its plugin."""
    from harness.components.contracts import build_tta

    try:
        return len(build_tta(registry.get("tta", name)))
    except HarnessError as exc:
        raise HarnessError(
            f"tta {name}: the runs kept predictions under it, but {exc}; pass its plugin with "
            f"--plugin, or leave it out with --tta"
        ) from None


@dataclass
class Scores:
    """Per-image, per-class Dice of each configuration on each fold: ``[fold][key]`` a list
    of ``(29,)`` rows in the fold's image order."""

    folds: dict[int, dict[tuple[tuple[int, ...], str, str], list[np.ndarray]]] = field(
        default_factory=dict
    )

    def add(self, fold: int, key: tuple[tuple[int, ...], str, str], row: np.ndarray) -> None:
        self.folds.setdefault(fold, {}).setdefault(key, []).append(row)

    def of(self, key: tuple[tuple[int, ...], str, str]) -> dict[int, np.ndarray]:
        return {f: np.stack(by_key[key]) for f, by_key in sorted(self.folds.items())}


def score(
    found: Found, choice: Choice, truth: Callable[[str], np.ndarray], progress: Progress | None
) -> Scores:
    """Every configuration scored on every fold's validation images, one image at a time."""
    scores = Scores()
    threshold = float(found.benchmark["protocol"]["fields"].get("threshold", 0.5))
    images = list(_fold_images(found))
    for done, (fold, name, index) in enumerate(images):
        if progress is not None:
            progress(done, len(images))
        probabilities = _member_probabilities(found.members, fold, index, choice.tta)
        target = truth(name)
        for members, tta in itertools.product(choice.sets, choice.tta):
            total = sum(probabilities[m][tta] for m in members)
            masks = total > threshold * 255 * len(members)
            for post, run in choice.postprocessors.items():
                done_masks = masks if run is None else run(masks)
                scores.add(fold, (members, tta, post), _dice(done_masks, target))
    if progress is not None:
        progress(len(images), len(images))
    return scores


def _fold_images(found: Found) -> Iterator[tuple[int, str, dict[str, int]]]:
    """Each fold's validation images in name order: (fold, name, each run's index of it),
    the members' runs of a fold checked to hold the same images."""
    for fold in found.folds:
        runs = [r for m in found.members for r in m.on(fold)]
        names = set(runs[0].kept.names)
        for run in runs:
            if set(run.kept.names) != names or list(run.kept.names) != run.record.val_images:
                raise HarnessError(
                    f"{visible(run.path)}: its kept predictions are of other images than "
                    f"{visible(runs[0].path)}'s (fold {fold}); members must validate on the "
                    "same images"
                )
        for name in sorted(names):
            yield fold, name, {r.path: r.kept.names.index(name) for r in runs}


def _member_probabilities(
    members: Sequence[Member], fold: int, index: Mapping[str, int], tta: Sequence[str]
) -> list[dict[str, np.ndarray]]:
    """Each member's probability levels (0..255, float32) of one image under each test-time
    augmentation: the mean over its runs on the fold (its seeds)."""
    out = []
    for member in members:
        runs = member.on(fold)
        levels = {}
        for name in tta:
            total = sum(r.kept.load(name, index[r.path]).astype(np.float32) for r in runs)
            levels[name] = total / len(runs)
        out.append(levels)
    return out


def _dice(masks: np.ndarray, truth: np.ndarray) -> np.ndarray:
    import torch

    from harness.metric.dice import dice_scores

    return dice_scores(torch.from_numpy(masks), torch.from_numpy(truth)).numpy()


# -- the rule and the rows ------------------------------------------------------------------


def kept_classes(plain: Mapping[int, np.ndarray], post: Mapping[int, np.ndarray]) -> np.ndarray:
    """Where a post-processor is kept (``RULE``): a bool per class, True where its Dice over
    every fold's images rises and falls on no fold. ``plain`` and ``post``: per fold, the
    ``(images, 29)`` Dice without and with it."""
    folds = sorted(plain)
    before = np.concatenate([plain[f] for f in folds]).mean(axis=0)
    after = np.concatenate([post[f] for f in folds]).mean(axis=0)
    keep = after > before
    for f in folds:
        keep &= post[f].mean(axis=0) >= plain[f].mean(axis=0)
    return keep


@dataclass(frozen=True)
class Configuration:
    """One row: members (indices), test-time augmentation, post-processor and the classes it
    is kept for, and its per-image, per-class Dice on each fold."""

    members: tuple[int, ...]
    tta: str
    postprocessor: str
    kept_for: tuple[str, ...]
    dice: Mapping[int, np.ndarray]

    @property
    def by_fold(self) -> dict[int, float]:
        """Each fold's mean Dice (per class over its images, then over classes)."""
        return {f: float(d.mean(axis=0).mean()) for f, d in self.dice.items()}

    @property
    def mean(self) -> float:
        return statistics.fmean(self.by_fold.values())

    def units(self) -> list[Unit]:
        """Its units for the noise model: each fold's per-image Dice (mean over classes)."""
        return [Unit(d.mean(axis=1), f) for f, d in self.dice.items()]

    def per_class(self) -> dict[str, float]:
        means = np.mean([d.mean(axis=0) for d in self.dice.values()], axis=0)
        return {c: float(v) for c, v in zip(CLASSES, means, strict=True)}


def configurations(scores: Scores, choice: Choice) -> list[Configuration]:
    """Every configuration, the post-processors' kept classes chosen by ``RULE``."""
    out = []
    for members, tta in itertools.product(choice.sets, choice.tta):
        plain = scores.of((members, tta, "none"))
        out.append(Configuration(members, tta, "none", (), plain))
        for post in list(choice.postprocessors)[1:]:
            done = scores.of((members, tta, post))
            keep = kept_classes(plain, done)
            dice = {f: np.where(keep[None, :], done[f], plain[f]) for f in plain}
            kept = tuple(c for c, k in zip(CLASSES, keep, strict=True) if k)
            out.append(Configuration(members, tta, post, kept, dice))
    return out


# -- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What ``select`` made: the table written (None: kept, and said), its data, and the
    command that ships #1 with this runs folder and dataset."""

    table: Path | None
    data: Mapping[str, Any]
    command: str


def select(
    request: SelectRequest, *, progress: Progress | None = None, say: Say | None = None
) -> Selection:
    """Score every configuration on the folds' kept predictions, judge and publish the table
    (``<benchmark>.select.md`` with its twin and page), score #1 on the held-out test images
    where there are labelled ones and weights; return what was made."""
    request.check()
    found = find_members(request)
    registry = Registry.load(request.plugins)
    choice = choices(request, found.members, registry)
    data = dataset_root(request, found.benchmark)
    scores = score(found, choice, truth_of(data, found.benchmark), progress)
    rows = sorted(configurations(scores, choice), key=lambda c: _order(found, choice, c))
    held = held_out(request, found, rows[0], data) if rows else {"scored": False}
    table_data = selection_data(found, choice, rows, request, held)
    written = publish(request.table, lambda: table_data, Path(request.runs_dir), say)
    return Selection(written, table_data, ship_command(request, found, rows[0], data))


def _order(found: Found, choice: Choice, config: Configuration) -> tuple[Any, ...]:
    """Best CV Dice first; among equals the cheaper, then the one that changes fewer classes
    (a post-processor kept for no class after no post-processing at all), then by name."""
    members = [found.members[i] for i in config.members]
    passes = _cost(members, choice.passes[config.tta])["passes"]
    changed = (len(config.kept_for), config.postprocessor != "none")
    return (-config.mean, passes, changed, _label(found, config))


def _label(found: Found, config: Configuration) -> str:
    members = " + ".join(found.members[i].name for i in config.members)
    return f"{members} · {config.tta} · {config.postprocessor}"


def selection_data(
    found: Found,
    choice: Choice,
    rows: Sequence[Configuration],
    request: SelectRequest,
    held: Mapping[str, Any],
) -> dict[str, Any]:
    """The table as data (its JSON twin): the members, what was tried and by which rule,
    each configuration ranked with its judgement and cost, the held-out score and the command
    that ships #1."""
    judged = judge_units([c.units() for c in rows], [c.mean for c in rows])
    return {
        "kind": "selection",
        "benchmark_id": request.benchmark,
        "benchmark": found.benchmark,
        "members": [_member_data(m) for m in found.members],
        "settings": {
            "max_members": request.max_members,
            "tta": list(choice.tta),
            "passes": dict(choice.passes),
            "postprocessors": list(choice.postprocessors),
            "rule": RULE,
        },
        "excluded": [
            {"path": visible(u.path.as_posix()), "reason": u.reason} for u in found.excluded
        ],
        "left_out": [{"entry": e, "reason": why} for e, why in found.left_out],
        "noise": judged.summary(),
        "held_out": dict(held),
        "command": ship_command(request, found, rows[0], None) if rows else None,
        "rows": [
            _row_data(rank, found, choice, c, judged.judged[rank - 1])
            for rank, c in enumerate(rows, 1)
        ],
    }


def _member_data(member: Member) -> dict[str, Any]:
    return {
        "name": member.name,
        "folder": member.folder,
        "entry": member.entry.label,
        "runs": len(member.runs),
        "inference_images_per_s": member.images_per_s,
    }


def _row_data(rank: int, found: Found, choice: Choice, config: Configuration, judged: Any) -> dict:
    members = [found.members[i] for i in config.members]
    by_fold = config.by_fold
    return {
        "rank": rank,
        "entry": _label(found, config),
        "key": "|".join(("+".join(m.folder for m in members), config.tta, config.postprocessor)),
        "members": [m.name for m in members],
        "tta": config.tta,
        "postprocessor": config.postprocessor,
        "kept_for": list(config.kept_for),
        "mean_dice": config.mean,
        "std": statistics.stdev(by_fold.values()) if len(by_fold) > 1 else None,
        "n": len(by_fold),
        **judged.data(),
        "vs_leader": verdict(judged.leader, judged.below),
        "dice_by_fold": {str(f): d for f, d in by_fold.items()},
        "per_class_dice": config.per_class(),
        **_cost(members, choice.passes[config.tta]),
        "runs": sorted(r.path for m in members for r in m.runs),
    }


def _cost(members: Sequence[Member], passes: int) -> dict[str, Any]:
    """Forward passes per image (every run of every member, each under the test-time
    augmentation's passes), and the images/s that makes from the runs' measured speed."""
    total = sum(len(m.runs) for m in members) * passes
    speeds = [m.images_per_s for m in members]
    seconds = None
    if all(s is not None for s in speeds):
        seconds = sum(len(m.runs) * passes / s for m, s in zip(members, speeds, strict=True))
    return {"passes": total, "inference_images_per_s": 1 / seconds if seconds else None}


def ship_command(
    request: SelectRequest, found: Found, config: Configuration, data: Path | None
) -> str:
    """The ``harness predict`` command that ships ``config``: its members' entry folders (every
    run of each: folds and seeds), its test-time augmentation and its post-processing for the
    classes it was kept for. ``data`` None: ``RUNS`` and ``DATA`` stand for the runs folder
    (with the runs' weights) and the dataset, as a published table writes it."""
    runs = Path(request.runs_dir).as_posix() if data is not None else "RUNS"
    folders = [f"{runs}/{request.benchmark}/{found.members[i].folder}" for i in config.members]
    words = ["harness", "predict", *folders, "--data", str(data) if data else "DATA"]
    words += ["--out", "submission.csv"]
    if config.tta != "none":
        words += ["--tta", config.tta]
    if config.postprocessor != "none" and config.kept_for:
        words += ["--postprocessor", config.postprocessor]
        if len(config.kept_for) < len(CLASSES):
            words += ["--postprocess-classes", ",".join(config.kept_for)]
    for plugin in request.plugins:
        words += ["--plugin", plugin]
    return shlex.join(words) if data is not None else " ".join(words)


# -- the dataset ----------------------------------------------------------------------------


def dataset_root(request: SelectRequest, benchmark: Mapping[str, Any]) -> Path:
    """The benchmark's dataset: ``--data`` or the built-in phantom it names, checked to be the
    one its records were made on (by fingerprint)."""
    from harness.data.sources import fingerprint, phantom_named

    name = str(benchmark["dataset"]["name"])
    root = Path(request.data) if request.data is not None else phantom_named(name)
    if root is None:
        raise HarnessError(
            f"{request.benchmark}: its dataset {visible(name)} is not the built-in phantom; "
            "pass --data with its folder (the validation images' labels are scored)"
        )
    if not (root / "train").is_dir():
        raise HarnessError(f"--data {visible(root)}: no train/ folder; give the dataset's folder")
    if fingerprint(root) != benchmark["dataset"]["fingerprint"]:
        raise HarnessError(
            f"--data {visible(root)}: not the dataset {request.benchmark} was made on (its "
            "fingerprint differs); give that dataset's folder"
        )
    return root


def truth_of(root: Path, benchmark: Mapping[str, Any]) -> Callable[[str], np.ndarray]:
    """An image's ``(29, H, W)`` bool truth by base name, at the resolution the metric scores
    (the original, or the protocol's ``eval_resolution``)."""
    from harness.data.annotations import rasterize, read_annotation
    from harness.data.layout import label_path, list_images

    paths = {p.name: p for p in list_images(root, "train")}
    setting = benchmark["protocol"]["fields"].get("eval_resolution", "original")
    size = None if setting == "original" else (int(setting),) * 2

    def truth(name: str) -> np.ndarray:
        if name not in paths:
            raise HarnessError(f"{visible(root)}: no training image {visible(name)}")
        return rasterize(read_annotation(label_path(paths[name])), size).astype(bool)

    return truth


def held_out(
    request: SelectRequest, found: Found, config: Configuration, root: Path
) -> dict[str, Any]:
    """#1 scored once on the dataset's labelled test images, through ``harness predict``
    (every run of its members, its test-time augmentation and post-processing); where there
    are none, or the runs folder holds no weights, why not."""
    from harness.data.layout import label_path, list_images
    from harness.results.records import WEIGHTS_NAME

    images = list_images(root, "test") if (root / "test").is_dir() else []
    if not images or not all(label_path(p).is_file() for p in images):
        return {"scored": False, "reason": "the dataset's test images have no labels"}
    runs = [Path(request.runs_dir) / r.path for i in config.members for r in found.members[i].runs]
    if not all((p.parent / WEIGHTS_NAME).is_file() for p in runs):
        return {
            "scored": False,
            "reason": "the runs folder holds no weights (records only); select in the runs "
            "folder the runs trained in to score #1 on them",
        }
    return _score_test(request, found, config, root, len(images))


def _score_test(
    request: SelectRequest, found: Found, config: Configuration, root: Path, count: int
) -> dict[str, Any]:
    from harness.inference.predict import PredictOptions, predict_ensemble
    from harness.metric.evaluate import evaluate_submission

    folders = [
        Path(request.runs_dir) / request.benchmark / found.members[i].folder for i in config.members
    ]
    post = config.postprocessor if config.kept_for else "none"
    options = PredictOptions(
        split="test",
        tta=config.tta,
        device="cpu",
        plugins=request.plugins,
        score=False,
        postprocessor=post,
        postprocess_classes=config.kept_for or None,
    )
    with tempfile.TemporaryDirectory(prefix="harness-select-") as scratch:
        out = Path(scratch) / "submission.csv"
        predict_ensemble(folders, root, out, options)
        result = evaluate_submission(root, out, split="test")
    return {
        "scored": True,
        "rank": 1,
        "images": count,
        "mean_dice": result.mean_dice,
        "per_class_dice": dict(result.per_class_dice),
    }
