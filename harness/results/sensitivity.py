"""The sensitivity picture of a tuned ablation table (``<benchmark>.ablation-AXIS-tuned.png``):
every tuning trial of each value against each tuned field, one colour per value, the chosen
trial a star (``harness.pictures.charts.tuning_curves``).

It is drawn from what the tuned rows' records carry (their ``tuning``: the trials with their
values and Dice, the choice, the space), so ``harness tune --vary`` and ``harness leaderboard``
draw the same picture from the same records, and a regenerated folder has it byte for byte.
Under successive halving each configuration is shown at the deepest rung it reached. A value
without a succeeded final run has no record to read, and no points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.pictures.charts import TrialPoint, TrialSeries, tuning_curves
from harness.results.records import read_record

#: A tuned field's range as the picture takes it: name, low, high, log.
Field = tuple[str, float, float, bool]


def picture_path(table: Path) -> Path:
    """The picture beside a tuned ablation table's markdown."""
    return Path(table).with_suffix(".png")


def draw(table: Path, data: Mapping[str, Any], runs_dir: Path) -> Path | None:
    """The picture of the tuned ablation table at ``table`` (its ``data``, the twin's), from
    the records its rows name under ``runs_dir``; None for an untuned table or one no tuned
    record of which can be read."""
    if not data.get("budget"):
        return None
    series: list[TrialSeries] = []
    spaces: list[Mapping[str, Any]] = []
    for row in data["rows"]:
        tuning = _tuning(row.get("runs", []), Path(runs_dir))
        if tuning is None:
            continue
        series.append(_series(str(row["value"]), tuning))
        spaces.append(((tuning.get("tuning") or {}).get("space")) or {})
    if not series:
        return None
    title = f"{str(data['axis']).capitalize()}: every trial of each value ({data['budget']})"
    return tuning_curves(series, union(spaces), picture_path(table), title=title)


def union(spaces: Sequence[Mapping[str, Mapping[str, Any]]]) -> list[Field]:
    """Every value's tuned names, each over the union of their ranges (a log axis where any
    value sampled on one), sorted by name."""
    merged: dict[str, Field] = {}
    for space in spaces:
        for name, r in space.items():
            low, high, log = float(r["low"]), float(r["high"]), bool(r.get("log", True))
            _, seen_low, seen_high, seen_log = merged.get(name, (name, low, high, log))
            merged[name] = (name, min(seen_low, low), max(seen_high, high), seen_log or log)
    return [merged[name] for name in sorted(merged)]


def _tuning(runs: Sequence[str], runs_dir: Path) -> dict[str, Any] | None:
    """The tuning the first readable record of a row carries (its seeds share one study)."""
    for run in runs:
        record = read_record(runs_dir / run)
        if record is not None and record.tuning.get("trials"):
            return record.tuning
    return None


def _series(label: str, tuning: Mapping[str, Any]) -> TrialSeries:
    """A value's trials (each configuration at its deepest rung) and its chosen one."""
    deepest: dict[int, Mapping[str, Any]] = {}
    for trial in tuning["trials"]:
        number = int(trial["number"])
        if number not in deepest or trial.get("rung", 0) > deepest[number].get("rung", 0):
            deepest[number] = trial
    points: list[TrialPoint] = [
        (dict(t["values"]), t.get("mean_dice")) for _, t in sorted(deepest.items())
    ]
    chosen = tuning.get("chosen")
    best = None if not chosen else (dict(chosen["values"]), chosen.get("mean_dice"))
    return (label, points, best)
