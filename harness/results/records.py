"""Records: one JSON file per run, the only source a leaderboard is built from.

Written atomically (temp file, fsync, rename, fsync of the folder), so a reader never
sees half a record, even after a kill -9 or a power cut, with keys in a fixed order so
that two identical runs differ only in timestamps. Temp files left by a killed writer
are swept by the next write of the same file.

Records are read back defensively: a file that is not valid JSON, is of another schema,
lacks what a leaderboard needs, or names a benchmark id that could walk out of the
leaderboards folder is skipped, never trusted.
"""

from __future__ import annotations

import json
import math
import platform
import re
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_text
from harness.classes import CLASSES

RECORD_NAME = "record.json"
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
    schema: int = SCHEMA

    @property
    def benchmark_id(self) -> str:
        return self.benchmark["id"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_record(path: Path, record: Record) -> None:
    """Write ``record`` to ``path`` atomically."""
    atomic_write_text(path, json.dumps(record.to_dict(), indent=2, sort_keys=False) + "\n")


def read_record(path: Path) -> Record | None:
    """The record at ``path``, or None when it is unreadable, of another schema or malformed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            return None
        record = Record(**data)
    except (OSError, ValueError, TypeError):
        return None
    return record if _well_formed(record) else None


#: A benchmark id becomes a file name (``LEADERBOARDS/<id>.md``): no separators, no dot first.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
_ENTRY_FIELDS = ("model", "loss", "optimizer", "scheduler", "augmentation")


def safe_name(text: object) -> bool:
    """Whether ``text`` can be used as one file name inside an output folder."""
    return isinstance(text, str) and bool(_SAFE_ID.match(text))


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _well_formed(r: Record) -> bool:
    """What rendering a leaderboard relies on; anything else a hand-edited file may omit."""
    bench = r.benchmark
    if r.status not in ("succeeded", "failed") or not isinstance(r.seed, int) or r.seed < 0:
        return False
    if not isinstance(bench, dict) or not safe_name(bench.get("id")):
        return False
    protocol, dataset = bench.get("protocol"), bench.get("dataset")
    if not isinstance(protocol, dict) or not isinstance(dataset, dict):
        return False
    if not all(isinstance(protocol.get(k), str) for k in ("label", "hash")):
        return False
    if not isinstance(protocol.get("fields"), dict):
        return False
    if not all(isinstance(dataset.get(k), str) for k in ("name", "fingerprint")):
        return False
    if not isinstance(r.entry, dict) or not isinstance(r.cost, dict):
        return False
    for name in _ENTRY_FIELDS:
        component = r.entry.get(name)
        if not isinstance(component, dict) or not isinstance(component.get("name"), str):
            return False
        if not isinstance(component.get("params", {}), dict):
            return False
    if r.status == "succeeded":
        per_class = r.per_class_dice
        if not _number(r.mean_dice) or not isinstance(per_class, dict):
            return False
        if not all(_number(per_class.get(c)) for c in CLASSES):
            return False
    return True


def iter_records(runs_dir: Path) -> Iterator[tuple[Path, Record]]:
    """Every readable record under ``runs_dir``, in path order."""
    for path in sorted(Path(runs_dir).rglob(RECORD_NAME)):
        record = read_record(path)
        if record is not None:
            yield path, record


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
