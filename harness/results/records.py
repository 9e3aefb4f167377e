"""Records: one JSON file per run, the only source a leaderboard is built from.

Written atomically (temp file, fsync, rename, fsync of the folder), so a reader never
sees half a record, even after a kill -9 or a power cut, with keys in a fixed order so
that two identical runs differ only in timestamps. Temp files left by a killed writer
are swept by the next write of the same file.

Records are input, and read back defensively: a file that is not a plain file (a link), is
not valid JSON, is of another schema, or fails the record's schema (``harness.results.schema``:
the type, range and characters of every field a table, twin or page uses) is never trusted,
and never dropped silently either: ``scan_records`` says which files it could not use and why
(the field, and what is wrong with it), for the tables and the terminal to name.
"""

from __future__ import annotations

import json
import os
import platform
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_text
from harness.errors import hidden, visible
from harness.results import schema
from harness.results.schema import problem

RECORD_NAME = "record.json"
#: The final epoch's weights (what the record's Dice measured), beside ``record.json``.
WEIGHTS_NAME = "weights-final.safetensors"
SCHEMA = 1
#: The entry's component fields a record is checked for: one per kind.
_ENTRY_FIELDS = schema.ENTRY_FIELDS


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
    #: The out-of-fold predictions kept beside the record (``--keep-predictions``;
    #: ``harness.results.predictions``): file, bytes, sha256, tta, images. None: not kept.
    predictions: dict[str, Any] | None = None
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
    """The record at ``path``, or why it cannot be used (one phrase naming what is wrong: the
    field and how, ``cost.wall_s: not a number``; ``harness.results.schema``)."""
    data = read_json(Path(path))
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return "is not a JSON object"
    if data.get("schema") != SCHEMA:
        found = visible(repr(data.get("schema")), 40)
        return f"has schema {found}; this harness reads schema {SCHEMA}"
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
        named = ", ".join(visible(k, 60) for k in unknown[:5])
        return f"has keys this harness does not know: {named}"
    wrong = problem(schema.Record, data)
    return Record(**data) if wrong is None else wrong


#: The largest record (or twin) read; a bigger file is not one this harness wrote.
MAX_BYTES = 32 * 2**20


def read_json(path: Path) -> Any:
    """The JSON at ``path``, or why it cannot be read (a phrase): not a plain file (a link, a
    folder, a device), too large, not UTF-8 JSON, nested too deeply, or holding text that
    cannot be written back (a lone surrogate)."""
    try:
        found = os.stat(path, follow_symlinks=False)
        if not stat.S_ISREG(found.st_mode):
            return "is not a plain file (a link, a folder or a device)"
        if found.st_size > MAX_BYTES:
            return f"is larger than {MAX_BYTES // 2**20} MiB"
        with open(path, "rb", opener=_no_follow) as fh:
            raw = fh.read(MAX_BYTES + 1)
        data = json.loads(raw.decode("utf-8"))
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    except UnicodeError:
        return "is not valid JSON: not UTF-8 text, or text with a lone surrogate"
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
        return f"is not valid JSON{where}: truncated or hand-edited"
    except RecursionError:
        return "is nested too deeply to be a record"
    return data


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))


@dataclass(frozen=True)
class Unusable:
    """A ``record.json`` that a table cannot use, and why."""

    path: Path
    reason: str
    #: The benchmark it belongs to, from its contents or its folder (None when unknown).
    benchmark: str | None = None

    def __str__(self) -> str:
        return f"{visible(self.path)}: {visible(self.reason)}"


def safe_name(text: object) -> bool:
    """Whether ``text`` can be used as one file name inside an output folder."""
    return isinstance(text, str) and bool(schema.SAFE_ID.match(text))


def iter_records(runs_dir: Path) -> Iterator[tuple[Path, Record]]:
    """Every readable record under ``runs_dir``, in path order."""
    yield from scan_records(runs_dir)[0]


def scan_records(runs_dir: Path) -> tuple[list[tuple[Path, Record]], list[Unusable]]:
    """Every record under ``runs_dir``, in path order: those a table can use, and the rest
    with the reason and (from its contents, or its ``BENCHMARK/ENTRY/seed-N`` folder) the
    benchmark it belongs to."""
    usable: list[tuple[Path, Record]] = []
    unusable: list[Unusable] = []
    for path in _record_files(Path(runs_dir)):
        found = inspect_record(path)
        if isinstance(found, Record) and any(hidden(c) for c in str(path.relative_to(runs_dir))):
            found = "is in a folder whose name holds a line break, a control character or bytes "
            found += "that are not UTF-8 (rename it)"
        if isinstance(found, Record):
            usable.append((path, found))
        else:
            unusable.append(Unusable(path, found, _claimed_benchmark(path, Path(runs_dir))))
    return usable, unusable


def _record_files(runs_dir: Path) -> list[Path]:
    """Every ``record.json`` under ``runs_dir``, sorted; links to folders are not followed (a
    runs folder from elsewhere may hold one that leads out of it, or round in a circle)."""
    found = [
        Path(folder) / RECORD_NAME
        for folder, _, files in os.walk(runs_dir, followlinks=False)
        if RECORD_NAME in files
    ]
    return sorted(found)


def _claimed_benchmark(path: Path, runs_dir: Path) -> str | None:
    """The benchmark an unusable record names, or the one its folder says."""
    data = read_json(path)
    try:
        bench = data.get("benchmark", {}).get("id")
    except AttributeError:
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
