"""A table row's drill-down: the sections its page draws when the row is opened.

Per-class Dice against the leader's (all 29 classes), the seeds or folds, the row's interval,
rank band and test against the leader (adjusted p, the chance it beats the leader), the cost,
the tuning budget and trials (and the sensitivity picture of a tuned ablation), and each run
with its pictures. Everything is formatted here, as the table's
columns read (``harness.results.columns``); the page's script only draws. The data is a row
of a table's JSON twin and, where the runs folder is at hand, the row's records (for the
tuning trials). A picture is linked only when its file exists as the page is written, by a
path relative to the page: nothing absolute is stored, and a page made from records without
pictures (the committed ``leaderboards/records``) names no runs folder at all.

A path a record names (a tuning study's folder, a trial's run, a run's pictures) is resolved
inside the runs folder the record came from (``harness.paths.confined``); one that is
absolute, climbs out with ``..`` or leads out through a link is left out of the page, and a
note in the drill-down says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from harness.classes import CLASSES
from harness.errors import visible
from harness.paths import confined
from harness.pictures.charts import CURVES, PER_CLASS, TUNING
from harness.results.columns import (
    COST,
    band_text,
    chosen_text,
    interval_text,
    minus,
    number,
    signed,
)
from harness.results.records import Record, read_record

#: What a run folder may hold to look at, by its link's label (``harness.runs.report``
#: draws ``prediction.png``; that layer sits above this one, so its name is written here).
RUN_PICTURES = (
    ("curves", CURVES),
    ("per-class Dice", PER_CLASS),
    ("prediction", "prediction.png"),
    ("tuning", TUNING),
)

Section = dict[str, Any]


@dataclass
class Sources:
    """Where a page finds what its drill-downs show beyond the twin: the runs folder (None:
    not at hand) and the page's own folder, which links are relative to."""

    page_dir: Path
    runs_dir: Path | None = None
    _records: dict[str, Record | None] = field(default_factory=dict)

    def inside(self, path: str) -> bool:
        """Whether ``path`` (as a record names it) stays inside the runs folder (True when no
        runs folder is at hand: then nothing is read or linked)."""
        return self.runs_dir is None or confined(self.runs_dir, path) is not None

    def record(self, run: str) -> Record | None:
        """The record at ``run`` (its path inside the runs folder), read once."""
        if self.runs_dir is None:
            return None
        if run not in self._records:
            path = confined(self.runs_dir, run)
            self._records[run] = None if path is None else read_record(path)
        return self._records[run]

    def link(self, folder: str, name: str) -> str | None:
        """A link from the page to ``name`` in the run folder ``folder`` (a path inside the
        runs folder), or None when there is no such file now, or it is not in there."""
        if self.runs_dir is None:
            return None
        target = confined(self.runs_dir, f"{folder}/{name}")
        if target is None or not target.is_file():
            return None
        try:
            relative = os.path.relpath(target, self.page_dir)
        except ValueError:  # another drive: no relative path
            return None
        return quote(Path(relative).as_posix())


def row_sections(
    row: Mapping[str, Any],
    reference: Mapping[str, Any] | None,
    reference_label: str,
    sources: Sources,
    sensitivity: str | None = None,
) -> list[Section]:
    """The drill-down of one row (a leaderboard twin's row, or an ablation row joined with
    the leaderboard's): every section its data allows, in reading order."""
    sections: list[Section] = []
    if row.get("per_class_dice"):
        ref = reference.get("per_class_dice") if reference else None
        sections.append(per_class(row["per_class_dice"], ref, reference_label))
    if row.get("dice_by_seed"):
        sections.append(units(row))
    verdict = row.get("vs_leader", row.get("vs_best"))
    if verdict is not None:
        sections.append(judgement(row, str(verdict), reference_label))
    if "params_m" in row:
        sections.append(cost(row))
    sections += tuning(row, sources, sensitivity)
    if row.get("runs"):
        sections += runs(row["runs"], sources)
    return sections


def per_class(
    values: Mapping[str, float], reference: Mapping[str, float] | None, label: str
) -> Section:
    """All 29 classes: a bar each, the reference's value as a tick, and the numbers."""
    ref = reference or {}
    lines = [
        [c, number(values[c], 4), number(ref.get(c), 4), signed(minus(values[c], ref.get(c)), 4)]
        for c in CLASSES
    ]
    return {
        "kind": "bars",
        "title": "Per-class Dice",
        "labels": list(CLASSES),
        "values": [values[c] for c in CLASSES],
        "reference": [ref.get(c) for c in CLASSES] if reference else None,
        "reference_label": label if reference else "",
        "columns": ["Class", "Dice", label.split(" ")[0] if reference else "—", "Δ"],
        "rows": lines,
    }


def units(row: Mapping[str, Any]) -> Section:
    """Dice per seed, or per fold for a cross-validated row (each the mean over its seeds)."""
    folds = row.get("folds") or []
    unit = "Fold" if folds else "Seed"
    lines = [[f"{unit.lower()} {u}", f"{d:.4f}"] for u, d in row["dice_by_seed"].items()]
    std = row.get("std")
    spread = f" ± {std:.4f}" if isinstance(std, int | float) else ""
    seeds = ", ".join(str(s) for s in row.get("seeds", []))
    over = f", each the mean over seeds {seeds}" if folds else ""
    title = f"{unit}s: mean {row['mean_dice']:.4f}{spread} over {len(lines)}{over}"
    return {"kind": "table", "title": title, "columns": [unit, "Dice"], "rows": lines}


def judgement(row: Mapping[str, Any], verdict: str, reference: str) -> Section:
    """How sure the row is, as its twin holds it: the verdict against the reference row and,
    where the noise model covers the row, its 95 % interval and rank band and its test (the
    rule, the adjusted p, the probability it beats the reference, the gap)."""
    who = reference.split(" (")[0] or "the leader"
    items = [["Verdict", verdict]]
    if row.get("interval"):
        items.append(["95 % CI of the true mean Dice", interval_text(*row["interval"])])
    if row.get("rank_band"):
        items.append(["Rank (95 %)", band_text(*row["rank_band"])])
    found = row.get("test") or {}
    if found.get("method"):
        items.append(["Rule", str(found["method"])])
    if found.get("p_value") is not None:
        items.append(["Adjusted p", f"{found['p_value']:.4f}"])
    if found.get("beats_leader") is not None:
        items.append([f"P(beats {who})", f"{found['beats_leader']:.3f}"])
    if found.get("gap") is not None:
        items.append([f"Behind {who} by", f"{found['gap']:.4f}"])
    if found.get("interval"):  # a twin from before noise models: its paired test's interval
        low, high = found["interval"]
        items.append(["95 % interval of the difference", f"[{low:+.4f}, {high:+.4f}]"])
    return {"kind": "facts", "title": f"Against {who}", "items": items}


def cost(row: Mapping[str, Any]) -> Section:
    """The cost columns (``harness.results.columns.COST``), as the table shows them."""
    items = [[column.name, column.cell(row)] for column in COST]
    return {"kind": "facts", "title": "Cost", "items": items}


def tuning(row: Mapping[str, Any], sources: Sources, sensitivity: str | None) -> list[Section]:
    """The budget; a tuned row's trials (from its records) and its sensitivity pictures."""
    found = _tuning(row, sources)
    budget = row.get("budget") or found.get("budget")
    sections: list[Section] = []
    if budget:
        items = [["Budget", str(budget)]]
        if row.get("chosen"):
            items.append(["Chosen", chosen_text(row["chosen"])])
        default = found.get("default") or {}
        if default.get("gain") is not None and default.get("mean_dice") is not None:
            items.append(["Over the default", _gain_text(default)])
        sections.append({"kind": "facts", "title": "Tuning", "items": items})
    if found.get("trials"):
        sections.append(trials(found))
        named = [t["record"] for t in found["trials"] if t.get("record")]
        shown = [
            {"path": run, "links": links}
            for run in named
            if sources.inside(run) and (links := _links(run, sources))
        ]
        if shown:
            sections.append({"kind": "runs", "title": "Tuning trials' runs", "items": shown})
        sections += outside([r for r in named if not sources.inside(r)], "tuning trial's run")
    study = found.get("study")
    src = sources.link(study, TUNING) if study and sources.inside(study) else None
    for title, picture in (("Sensitivity", sensitivity), ("This entry's tuning study", src)):
        if picture:
            sections.append({"kind": "image", "title": title, "src": picture, "alt": title})
    if study and not sources.inside(study):
        sections += outside([study], "tuning study's folder")
    return sections


def _gain_text(default: Mapping[str, Any]) -> str:
    """What tuning gained over the default configuration (successive halving's first)."""
    epochs = default.get("epochs")
    at = f" at {epochs} epochs" if epochs is not None else ""
    return (
        f"{float(default['gain']):+.4f} Dice (the default values scored "
        f"{float(default['mean_dice']):.4f}{at})"
    )


def outside(paths: Sequence[str], what: str) -> list[Section]:
    """The note that says which paths a record names lead outside the runs folder (so they
    are not on the page); none when there are none."""
    if not paths:
        return []
    shown = "; ".join(visible(p, 120) for p in paths[:3]) + ("; …" if len(paths) > 3 else "")
    count = f"{len(paths)} {what}{'s' if len(paths) > 1 else ''}"
    text = (
        f"Not shown: {count} named in the records {'lead' if len(paths) > 1 else 'leads'} "
        f"outside the runs folder (absolute, climbing out with .., or through a link): {shown}"
    )
    return [{"kind": "text", "title": "Left out", "text": text}]


def _tuning(row: Mapping[str, Any], sources: Sources) -> dict[str, Any]:
    for run in row.get("runs", []):
        record = sources.record(run)
        if record is not None and record.tuning:
            return record.tuning
    return {}


def trials(found: Mapping[str, Any]) -> Section:
    """Every tuning trial: its values, Dice, status and cost; the chosen one marked."""
    chosen = (found.get("chosen") or {}).get("trial")
    at = (found.get("chosen") or {}).get("epochs")
    names = sorted({k for t in found["trials"] for k in t.get("values", {})})
    staged = any(t.get("epochs") is not None for t in found["trials"])  # halving's rungs
    lines = [
        [
            str(t["number"] + 1)
            + (" (chosen)" if t["number"] == chosen and t.get("epochs") == at else ""),
            *([str(t.get("epochs", ""))] if staged else []),
            *(number(t.get("values", {}).get(k)) for k in names),
            number(t.get("mean_dice"), 4),
            str(t.get("status", "")),
            number(t.get("device_hours"), 4),
        ]
        for t in found["trials"]
    ]
    fold = (found.get("tuning") or {}).get("fold")
    where = f", validated on fold {fold}" if fold is not None else ""
    return {
        "kind": "table",
        "title": f"Tuning trials ({len(lines)}{where})",
        "columns": [
            "Trial",
            *(["Epochs"] if staged else []),
            *names,
            "Dice",
            "Status",
            "Device-hours",
        ],
        "rows": lines,
    }


def runs(paths: Sequence[str], sources: Sources) -> list[Section]:
    """Each record the row was made from, with its run's pictures where they exist (a path
    that leads outside the runs folder is left out, and said)."""
    items = [
        {"path": p, "links": _links(PurePosixPath(p).parent.as_posix(), sources)}
        for p in paths
        if sources.inside(p)
    ]
    section = {"kind": "runs", "title": "Runs (records, inside the runs folder)", "items": items}
    return [section, *outside([p for p in paths if not sources.inside(p)], "run")]


def _links(folder: str, sources: Sources) -> list[list[str]]:
    """Each picture the run folder ``folder`` holds, as [label, link from the page]."""
    return [[label, href] for label, name in RUN_PICTURES if (href := sources.link(folder, name))]
