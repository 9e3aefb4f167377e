"""An ablation's design, kept beside its runs, so that its table comes back from the records
alone: the axis, each value and the entry (by key) it ran as, and the tuning budget of a
tuned ablation. ``harness sweep`` and ``harness tune --vary`` write it to
``<runs>/<benchmark>/ablations/<axis>[-tuned].json``; ``harness leaderboard`` rebuilds each
design's table from the records (``harness.results.refresh``), into an empty folder too.

A design is input like a record: a file that fails its schema is named in one line and left
out, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from harness.atomic import atomic_write_text
from harness.results.ablation import ablation_data, ablation_file
from harness.results.records import Record, Unusable
from harness.results.rows import rows
from harness.results.schema import Axis, Line, SafeId, problem

#: A design's format; a reader refuses another major format.
FORMAT = "harness-ablation-design/1"
#: Where a benchmark's designs are, inside its folder of runs.
FOLDER = "ablations"


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Line
    key: Line | None = None


class Design(BaseModel):
    """The schema of a design file."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["harness-ablation-design/1"]
    benchmark_id: SafeId
    axis: Axis
    budget: Line | None = None
    values: list[_Value]


def design_path(runs_dir: Path, benchmark_id: str, axis: str, tuned: bool = False) -> Path:
    """``<runs>/<benchmark>/ablations/<axis>[-tuned].json``."""
    return Path(runs_dir) / benchmark_id / FOLDER / f"{axis}{'-tuned' if tuned else ''}.json"


def design_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """The design of an ablation table's data (``ablation_data``, or its twin)."""
    return {
        "format": FORMAT,
        "benchmark_id": data["benchmark_id"],
        "axis": data["axis"],
        "budget": data.get("budget"),
        "values": [{"value": r["value"], "key": r.get("key")} for r in data["rows"]],
    }


def write_design(runs_dir: Path, data: Mapping[str, Any]) -> Path:
    """Keep the design of an ablation table's ``data`` beside its runs; the path written."""
    design = design_of(data)
    path = design_path(runs_dir, design["benchmark_id"], design["axis"], bool(design["budget"]))
    atomic_write_text(path, json.dumps(design, indent=2, sort_keys=True) + "\n")
    return path


def read_designs(runs_dir: Path, benchmark_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The designs kept for ``benchmark_id`` under ``runs_dir``, in name order, and a line for
    each file that could not be used (not JSON, or failing the schema)."""
    found: list[dict[str, Any]] = []
    bad: list[str] = []
    folder = Path(runs_dir) / benchmark_id / FOLDER
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            bad.append(f"{path}: not a design ({type(exc).__name__}); left out")
            continue
        wrong = problem(Design, data) if isinstance(data, dict) else "not an object"
        if wrong is None and data["benchmark_id"] != benchmark_id:
            wrong = f"benchmark_id: not {benchmark_id}, the folder it is in"
        if wrong is not None:
            bad.append(f"{path}: {wrong}; left out")
            continue
        found.append(data)
    return found, bad


def design_table(main_table: Path, design: Mapping[str, Any]) -> Path:
    """The ablation table a design makes, beside the benchmark's leaderboard ``main_table``."""
    return ablation_file(main_table, design["axis"], bool(design.get("budget")))


def table_of(
    design: Mapping[str, Any],
    found: Sequence[tuple[Path, Record]],
    runs_dir: Path,
    excluded: Sequence[Unusable] = (),
) -> dict[str, Any]:
    """The data of a design's ablation table, from the records ``found`` under ``runs_dir``."""
    bench = design["benchmark_id"]
    mine = [(p, r) for p, r in found if r.benchmark_id == bench]
    by_key = {row.entry.key: row for row in rows((r for _, r in mine), bench)}
    table_rows = [
        (v["value"], v["key"], by_key.get(v["key"]) if v["key"] else None) for v in design["values"]
    ]
    return ablation_data(
        design["axis"],
        table_rows,
        bench,
        runs_of={id(r): p.relative_to(runs_dir).as_posix() for p, r in mine},
        excluded=excluded,
        budget=design.get("budget"),
    )
