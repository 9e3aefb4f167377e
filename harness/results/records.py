"""Records: one JSON file per run, the only source a leaderboard is built from.

Written atomically (temp file, fsync, rename, fsync of the folder), so a reader never
sees half a record, even after a kill -9 or a power cut, with keys in a fixed order so
that two identical runs differ only in timestamps. Temp files left by a killed writer
are swept by the next write of the same file.

Records are read back defensively: a file that is not valid JSON, is of another schema,
lacks what a leaderboard needs, or names a benchmark id that could walk out of the
leaderboards folder is never trusted, and never dropped silently either: ``scan_records``
says which files it could not use and why, for the tables and the terminal to name.
"""

from __future__ import annotations

import json
import math
import platform
import re
import subprocess
from collections.abc import Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_text
from harness.classes import CLASSES
from harness.components.kinds import COMPONENT_KINDS

RECORD_NAME = "record.json"
#: The final epoch's weights (what the record's Dice measured), beside ``record.json``.
WEIGHTS_NAME = "weights-final.safetensors"
SCHEMA = 1


@dataclass
class Record:
    """One run: one entry, one seed, on one benchmark; succeeded or failed."""

    status: str
    seed: int
    mean_dice: float | None
    per_class_dice: dict[str, float]
    benchmark: dict[str, Any]
    entry: dict[str, Any]
    best: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    per_image_dice: list[list[float]] = field(default_factory=list)
    val_images: list[str] = field(default_factory=list)
    error: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    code_revision: str | None = None
    started_at: str = ""
    finished_at: str = ""
    #: Where an interrupted run was continued from: ``{"epoch", "batch", "at"}`` per resume.
    resumes: list[dict[str, Any]] = field(default_factory=list)
    #: A tuned entry's tuning (``harness tune``): budget, trials, chosen values, trial cost.
    tuning: dict[str, Any] = field(default_factory=dict)
    #: What the run ran on (``harness.engine.hardware.describe``); empty in older records.
    hardware: dict[str, Any] = field(default_factory=dict)
    #: The fold a cross-validated run trained without and validated on (None: the
    #: protocol's own ``fold``, as every run before cross-validation).
    fold: int | None = None
    schema: int = SCHEMA

    @property
    def benchmark_id(self) -> str:
        return self.benchmark["id"]

    @property
    def device_hours(self) -> float | None:
        """What the run cost: its recorded device-hours, else wall time × processes (None
        when the record has neither)."""
        hours = self.cost.get("device_hours")
        if isinstance(hours, int | float):
            return float(hours)
        wall = self.cost.get("wall_s")
        processes = self.cost.get("processes") or 1
        return wall / 3600 * int(processes) if isinstance(wall, int | float) else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hardware_kind(hardware: dict[str, Any]) -> str:
    """One line naming a kind of machine (what two records must share to compare only
    components): the GPUs when there are any, else the CPU model; empty when not recorded
    (``harness.engine.hardware.describe`` writes what this reads)."""
    if not hardware:
        return ""
    gpus = [f"{g['name']} ({g['memory_mb'] / 1024:.0f} GiB)" for g in hardware.get("gpus", [])]
    if gpus:
        return ", ".join(gpus) + f" (CUDA {hardware.get('cuda')}, driver {hardware.get('driver')})"
    return str(hardware.get("cpu", {}).get("model", "unknown CPU"))


def write_record(path: Path, record: Record) -> None:
    """Write ``record`` to ``path`` atomically."""
    atomic_write_text(path, json.dumps(record.to_dict(), indent=2, sort_keys=False) + "\n")


def read_record(path: Path) -> Record | None:
    """The record at ``path``, or None when it is unreadable, of another schema or malformed."""
    found = inspect_record(path)
    return found if isinstance(found, Record) else None


def inspect_record(path: Path) -> Record | str:
    """The record at ``path``, or why it cannot be used (one phrase naming what is wrong)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
        return f"is not valid JSON{where}: truncated or hand-edited"
    if not isinstance(data, dict):
        return "is not a JSON object"
    if data.get("schema") != SCHEMA:
        return f"has schema {data.get('schema')!r}; this harness reads schema {SCHEMA}"
    known = {f.name for f in fields(Record)}
    missing = sorted(
        f.name
        for f in fields(Record)
        if f.default is MISSING and f.default_factory is MISSING and f.name not in data
    )
    if missing:
        return f"lacks {', '.join(missing)}"
    unknown = sorted(set(data) - known)
    if unknown:
        return f"has keys this harness does not know: {', '.join(unknown)}"
    record = Record(**data)
    problem = _problem(record)
    return record if problem is None else problem


@dataclass(frozen=True)
class Unusable:
    """A ``record.json`` that a table cannot use, and why."""

    path: Path
    reason: str
    #: The benchmark it belongs to, from its contents or its folder (None when unknown).
    benchmark: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


#: A benchmark id becomes a file name (``LEADERBOARDS/<id>.md``): no separators, no dot first.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
_ENTRY_FIELDS = tuple(kind.field for kind in COMPONENT_KINDS)


def safe_name(text: object) -> bool:
    """Whether ``text`` can be used as one file name inside an output folder."""
    return isinstance(text, str) and bool(_SAFE_ID.match(text))


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _problem(r: Record) -> str | None:
    """What rendering a leaderboard relies on, and is missing (None: nothing); anything else
    a hand-edited file may omit."""
    if r.status not in ("succeeded", "failed"):
        return f"status {r.status!r} is neither succeeded nor failed"
    if not isinstance(r.seed, int) or isinstance(r.seed, bool) or r.seed < 0:
        return f"seed {r.seed!r} is not a non-negative whole number"
    bench = r.benchmark
    if not isinstance(bench, dict) or not safe_name(bench.get("id")):
        return "benchmark.id is missing or not a plain name"
    protocol, dataset = bench.get("protocol"), bench.get("dataset")
    if not isinstance(protocol, dict) or not isinstance(dataset, dict):
        return "benchmark lacks its protocol or dataset"
    if not all(isinstance(protocol.get(k), str) for k in ("label", "hash")):
        return "benchmark.protocol lacks its label or hash"
    if not isinstance(protocol.get("fields"), dict):
        return "benchmark.protocol lacks its fields"
    if not all(isinstance(dataset.get(k), str) for k in ("name", "fingerprint")):
        return "benchmark.dataset lacks its name or fingerprint"
    if not isinstance(r.entry, dict) or not isinstance(r.cost, dict):
        return "entry or cost is not an object"
    for name in _ENTRY_FIELDS:
        component = r.entry.get(name)
        if not isinstance(component, dict) or not isinstance(component.get("name"), str):
            return f"entry.{name} lacks its name"
        if not isinstance(component.get("params", {}), dict):
            return f"entry.{name}.params is not an object"
    hparams = r.entry.get("hparams", {})
    if not isinstance(hparams, dict) or not all(_number(v) for v in hparams.values()):
        return "entry.hparams is not an object of numbers"
    if not isinstance(r.tuning, dict) or not _number(r.tuning.get("trial_device_hours", 0)):
        return "tuning is not an object with a number of trial_device_hours"
    if r.status == "succeeded":
        if not _number(r.mean_dice):
            return "succeeded, but mean_dice is missing or not a finite number"
        per_class = r.per_class_dice
        if not isinstance(per_class, dict):
            return "succeeded, but per_class_dice is not an object"
        absent = [c for c in CLASSES if not _number(per_class.get(c))]
        if absent:
            return f"succeeded, but per_class_dice lacks a number for {', '.join(absent[:3])}"
    return None


def iter_records(runs_dir: Path) -> Iterator[tuple[Path, Record]]:
    """Every readable record under ``runs_dir``, in path order."""
    yield from scan_records(runs_dir)[0]


def scan_records(runs_dir: Path) -> tuple[list[tuple[Path, Record]], list[Unusable]]:
    """Every record under ``runs_dir``, in path order: those a table can use, and the rest
    with the reason and (from its contents, or its ``BENCHMARK/ENTRY/seed-N`` folder) the
    benchmark it belongs to."""
    usable: list[tuple[Path, Record]] = []
    unusable: list[Unusable] = []
    for path in sorted(Path(runs_dir).rglob(RECORD_NAME)):
        found = inspect_record(path)
        if isinstance(found, Record):
            usable.append((path, found))
        else:
            unusable.append(Unusable(path, found, _claimed_benchmark(path, Path(runs_dir))))
    return usable, unusable


def _claimed_benchmark(path: Path, runs_dir: Path) -> str | None:
    """The benchmark an unusable record names, or the one its folder says."""
    try:
        bench = json.loads(path.read_text(encoding="utf-8")).get("benchmark", {}).get("id")
    except (OSError, ValueError, AttributeError):
        bench = None
    if safe_name(bench):
        return bench
    parts = path.relative_to(runs_dir).parts
    return parts[0] if len(parts) == 4 and safe_name(parts[0]) else None


_LIBRARIES = (
    "segmentation-harness",  # this project's distribution (the import package is harness)
    "torch",
    "torchvision",
    "segmentation-models-pytorch",
    "timm",
    "albumentations",
    "numpy",
    "opencv-python-headless",
    "pluggy",
)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def code_revision() -> str | None:
    """The git commit of the harness source (``+dirty`` when it has local changes), if known."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
