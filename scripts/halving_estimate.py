"""Estimate what republishing the study's four tuned tables under successive halving costs,
from the committed records' wall times, and write the estimate into docs/tuning.md.

    python scripts/halving_estimate.py            # rewrite the estimate in docs/tuning.md
    python scripts/halving_estimate.py --check    # exit 1 when docs/tuning.md differs

The estimate sits between ``<!-- halving-estimate -->`` and ``<!-- /halving-estimate -->``.
For each table (``leaderboards/records/<benchmark>/ablations/<axis>.json``, and the designs of
the tuned tables of the full schedule, kept in ``ablations/full-schedule/<axis>-tuned.json``
since halving's tables replaced them), and for the study as a whole (an entry in several
tables counted once: its study is shared with ``--resume``):

- **fixed tables**: the device-hours of the fixed-budget rows' seeds, as recorded (another
  batch, on another machine);
- **seeds**: the full-schedule tuned rows' seeds, as recorded: what a fixed table of the same
  entries costs in the batch, and on the machine, that the trials ran in, so the ratios divide
  by it;
- **tuned, full**: those seeds plus their tuning trials (``tuning.trial_device_hours``), as
  recorded: what the tables cost under ``schedule = "full"``;
- **tuned, halving**: the same seeds plus the halving trials ``SCHEDULE`` would train, each
  costed from the entry's own full-schedule trials (80 epochs each,
  ``leaderboards/records/<trial benchmark>``): its time outside training (wall time minus
  epochs x training images / ``train_images_per_s``; about 5 s) plus the rung's epochs at the
  trial's measured seconds per epoch. The first rung's trials validate once, not every 20
  epochs, so this slightly overestimates them.

This was the estimate made before the republication; what halving's tables cost, as recorded,
is docs/study.md's ``tuned-cost`` table (``scripts/study_tables.py``).

Nothing here is typed by hand; the test ``tests/scripts/test_halving_estimate.py`` checks that
the block in docs/tuning.md is what the records give.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.components.entry import Entry
from harness.protocol import Tuning
from harness.results.records import Record, iter_records
from harness.studies import halving

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "leaderboards" / "records"
DOC = ROOT / "docs" / "tuning.md"
BENCHMARK = "synthetic-2267276f85__phantom-v2-ids20-size256-seed0-d52b2e9a"
#: The tables, in the order docs/study.md shows them.
AXES = ("optimizer", "model", "loss", "scheduler")
#: The halving budget the audits chose (docs/tuning.md): the same 6 configurations, eta 2,
#: from 20 epochs (eta 3 from 5 or 10 epochs failed the rule).
SCHEDULE = Tuning(trials=6, schedule="halving", eta=2, min_epochs=20)
#: Every schedule audited, cheapest first, each costed for the study as a whole.
AUDITED_SCHEDULES = (
    Tuning(trials=6, schedule="halving", eta=3, min_epochs=5),
    Tuning(trials=6, schedule="halving", eta=3, min_epochs=10),
    SCHEDULE,
)
#: The entries the rule audits (docs/tuning.md): the one in all four tables, and SGD.
AUDITED = ("unetpp|dice|adamw|warmup-cosine|none|", "unetpp|dice|sgd|warmup-cosine|none|")
BLOCK = re.compile(r"(<!-- halving-estimate -->\n)(.*?)(<!-- /halving-estimate -->)", re.DOTALL)


@dataclass(frozen=True)
class Costs:
    """One entry's device-hours: its fixed row's seeds, its tuned row's seeds, tuned under full
    (seeds + trials), the halving estimate (seeds + halving trials), and its audit (every
    configuration at the full horizon)."""

    fixed: float
    seeds: float
    full: float
    halving: float
    audit: float
    #: The halving estimate (seeds + trials) under each of ``AUDITED_SCHEDULES``.
    schedules: tuple[float, ...] = ()


def _hours(record: Record) -> float:
    return float(record.cost["wall_s"]) * int(record.cost.get("processes") or 1) / 3600


def trial_seconds(record: Record) -> tuple[float, float]:
    """A trial's (seconds outside training, seconds per epoch), from its record: its training
    images are its validation fold's count times the folds it trained on (equal folds)."""
    fields = record.benchmark["protocol"]["fields"]
    folds = int(fields["folds"]) - 1 - len(fields.get("exclude_folds") or [])
    images = len(record.val_images) * folds
    epochs = int(fields["epochs"])
    training = epochs * images / float(record.cost["train_images_per_s"])
    return float(record.cost["wall_s"]) - training, training / epochs


def halving_trial_hours(
    trials: Iterable[Record], epochs: int, tuning: Tuning, audit: bool = False
) -> float:
    """What ``tuning``'s halving trials would take for an entry whose trials at ``epochs``
    epochs took what ``trials`` record (``audit``: what its audit's full-horizon runs would
    take instead)."""
    measured = [trial_seconds(r) for r in trials]
    outside = statistics.fmean(m[0] for m in measured)
    per_epoch = statistics.fmean(m[1] for m in measured)
    if audit:
        return tuning.trials * (outside + epochs * per_epoch) / 3600
    rungs = halving.rungs(tuning, epochs)
    return sum(r.configs * (outside + r.epochs * per_epoch) for r in rungs) / 3600


def load(records: Path = RECORDS) -> tuple[dict[str, list[str]], dict[str, Costs]]:
    """Each table's entries (fixed keys, in order) and each entry's costs, by fixed key."""
    by_key: dict[str, list[Record]] = {}
    by_path: dict[str, Record] = {}
    for path, record in iter_records(records):
        by_path[path.parent.relative_to(records).as_posix()] = record
        if record.benchmark_id == BENCHMARK:
            by_key.setdefault(Entry.from_dict(record.entry).key, []).append(record)
    tables: dict[str, list[str]] = {}
    costs: dict[str, Costs] = {}
    for axis in AXES:
        fixed = _design(records, axis)
        tuned = _design(records, f"full-schedule/{axis}-tuned")
        tables[axis] = [fixed[v] for v in fixed]
        for value, key in fixed.items():
            costs[key] = _costs(by_key[key], by_key[tuned[value]], by_path)
    return tables, costs


def _design(records: Path, name: str) -> dict[str, str]:
    path = records / BENCHMARK / "ablations" / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return {v["value"]: v["key"] for v in data["values"]}


def _costs(fixed: list[Record], tuned: list[Record], by_path: Mapping[str, Record]) -> Costs:
    trial_hours = max(float(r.tuning.get("trial_device_hours", 0)) for r in tuned)
    trials = [by_path[t["record"]] for t in tuned[0].tuning["trials"]]
    epochs = int(trials[0].benchmark["protocol"]["fields"]["epochs"])
    audit = halving_trial_hours(trials, epochs, SCHEDULE, audit=True)
    seeds = sum(_hours(r) for r in tuned)
    schedules = tuple(seeds + halving_trial_hours(trials, epochs, t) for t in AUDITED_SCHEDULES)
    chosen = schedules[AUDITED_SCHEDULES.index(SCHEDULE)]  # the chosen one is among them
    fixed_seeds = sum(_hours(r) for r in fixed)
    return Costs(fixed_seeds, seeds, seeds + trial_hours, chosen, audit, schedules)


def table(tables: Mapping[str, list[str]], costs: Mapping[str, Costs]) -> list[str]:
    """The estimate as markdown: a row per table, then the study (each entry once)."""
    rows = [
        "| Table | entries | fixed tables | seeds | tuned, full (recorded) "
        "| tuned, halving (estimate) | halving / seeds | full / seeds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    groups: list[tuple[str, list[str]]] = [(axis, keys) for axis, keys in tables.items()]
    groups.append(("the study (each entry once)", list(dict.fromkeys(sum(tables.values(), [])))))
    for name, keys in groups:
        fixed = sum(costs[k].fixed for k in keys)
        seeds = sum(costs[k].seeds for k in keys)
        full = sum(costs[k].full for k in keys)
        halved = sum(costs[k].halving for k in keys)
        rows.append(
            f"| {name} | {len(keys)} | {fixed:.2f} h | {seeds:.2f} h | {full:.2f} h "
            f"| {halved:.2f} h | {halved / seeds:.2f}x | {full / seeds:.2f}x |"
        )
    rungs = halving.rungs(SCHEDULE, 80)
    audit = sum(costs[k].audit for k in AUDITED)
    return [
        f"Schedule: {SCHEDULE.trials} configurations, eta {SCHEDULE.eta}, from "
        f"{SCHEDULE.min_epochs} epochs: rungs {halving.words(rungs)} "
        f"({halving.trial_epochs(rungs)} trial-epochs per entry, against "
        f"{SCHEDULE.trials * 80} under the full schedule).",
        "",
        *rows,
        "",
        f"The rule's two audits (every configuration of {len(AUDITED)} entries at 80 epochs) "
        f"add about {audit:.2f} h, once.",
        "",
        *schedules(list(dict.fromkeys(sum(tables.values(), []))), costs),
    ]


def schedules(keys: list[str], costs: Mapping[str, Costs]) -> list[str]:
    """The study's tuned tables (each entry once) under each audited schedule."""
    fixed = sum(costs[k].seeds for k in keys)
    rows = [
        "| Schedule | rungs | trial-epochs per entry | the study, tuned (estimate) | / seeds |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for i, tuning in enumerate(AUDITED_SCHEDULES):
        rungs = halving.rungs(tuning, 80)
        tuned = sum(costs[k].schedules[i] for k in keys)
        rows.append(
            f"| eta {tuning.eta}, from {tuning.min_epochs} epochs | {halving.words(rungs)} "
            f"| {halving.trial_epochs(rungs)} | {tuned:.2f} h | {tuned / fixed:.2f}x |"
        )
    full = sum(costs[k].full for k in keys)
    rows.append(f"| full (recorded) | 6×80 epochs | 480 | {full:.2f} h | {full / fixed:.2f}x |")
    return [*rows, ""]


def rewrite(text: str, lines: list[str]) -> str:
    """``text`` with its estimate block replaced by ``lines``."""
    if not BLOCK.search(text):
        raise SystemExit(f"{DOC}: no <!-- halving-estimate --> block")
    return BLOCK.sub(lambda m: m.group(1) + "\n".join(lines) + "\n" + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/tuning.md differs")
    args = parser.parse_args(argv)
    text = DOC.read_text(encoding="utf-8")
    made = rewrite(text, table(*load()))
    if args.check:
        if made != text:
            print(f"{DOC} differs from the records; run python scripts/halving_estimate.py")
            return 1
        return 0
    DOC.write_text(made, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
