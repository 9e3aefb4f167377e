"""Records: one JSON file per run, the only source a leaderboard is built from.

Written atomically (temp file, fsync, rename), so a reader never sees half a record,
with keys in a fixed order so that two identical runs differ only in timestamps.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

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
    schema: int = SCHEMA

    @property
    def benchmark_id(self) -> str:
        return self.benchmark["id"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_record(path: Path, record: Record) -> None:
    """Write ``record`` to ``path`` atomically."""
    atomic_write_text(path, json.dumps(record.to_dict(), indent=2, sort_keys=False) + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    """Write, flush to disk, then rename over ``path``: readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_record(path: Path) -> Record | None:
    """The record at ``path``, or None when it is unreadable or of another schema."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA:
            return None
        return Record(**data)
    except (OSError, ValueError, TypeError):
        return None


def iter_records(runs_dir: Path) -> Iterator[tuple[Path, Record]]:
    """Every readable record under ``runs_dir``, in path order."""
    for path in sorted(Path(runs_dir).rglob(RECORD_NAME)):
        record = read_record(path)
        if record is not None:
            yield path, record


_LIBRARIES = (
    "harness",
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
