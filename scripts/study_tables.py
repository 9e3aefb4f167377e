"""Regenerate the study's tables in docs/study.md from the committed records.

    python scripts/study_tables.py            # rewrite the tables in docs/study.md in place
    python scripts/study_tables.py --check    # exit 1 when docs/study.md differs from the records

Each table sits between ``<!-- study-tables:NAME -->`` and ``<!-- /study-tables:NAME -->``
(``fixed``: the four fixed-budget ablations side by side; ``tuned-AXIS``: one axis, fixed and
tuned). Which rows a table has comes from the committed ablation tables' JSON twins
(``leaderboards/<benchmark>.ablation-<axis>.json`` and ``...-tuned.json``): their values, in
their order. Each value's figures come from ``leaderboards/records``: the row (``harness.results.
rows.rows``) of the entry that has that value and whose other components are those shared by
every value of the axis. Mean ± standard deviation over seeds; ``(best)`` marks the best of its
column and ``≈`` a row not resolved from it, by the rule the ablation tables use
(``harness.results.judging.judge``: a step-down max-t test on a noise model of the column's
runs). Nothing in these tables is typed by hand, so they cannot drift from the records.

A tuned column takes its rows by key: today's tuned tables from their twins' keys, and the
tuned tables they replaced (each entry's six trials at the full horizon over one shared space)
from those tables' designs, kept beside their records in
``leaderboards/records/<benchmark>/ablations/full-schedule/<axis>-tuned.json``. ``tuned-cost``
gives each tuned table's device-hours from its records.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from harness.components.entry import Entry
from harness.results.judging import TableNoise, judge
from harness.results.records import Record, iter_records
from harness.results.rows import Row, rows
from harness.results.tables import read_twin

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ROOT / "leaderboards"
RECORDS = BOARDS / "records"
DOC = ROOT / "docs" / "study.md"

#: The fixed table's columns, left to right, and each column's heading.
FIXED = {
    "model": "Model (Dice loss)",
    "loss": "Loss (UNet++)",
    "scheduler": "Scheduler (UNet++)",
    "optimizer": "Optimizer (UNet++)",
}
#: The fixed-against-tuned tables, in the order they appear, and each one's heading.
TUNED = {
    "optimizer": "Optimizer (UNet++, Dice loss)",
    "model": "Model (Dice loss, AdamW)",
    "loss": "Loss (UNet++, AdamW)",
    "scheduler": "Scheduler (UNet++, Dice loss, AdamW)",
}
_FIELDS = ("model", "loss", "optimizer", "scheduler", "augmentation")
#: Where the designs of the tuned tables that today's replaced are kept, inside the study's
#: folder of records: the tables of the full schedule over one shared space.
REPLACED = Path("ablations") / "full-schedule"


@dataclass(frozen=True)
class Column:
    """One axis of one budget: each value with its row, in the ablation table's order."""

    axis: str
    values: tuple[tuple[str, Row], ...]

    def keys(self) -> list[tuple[str, str]]:
        """(value, entry key) of each row."""
        return [(value, row.entry.key) for value, row in self.values]

    def row(self, value: str) -> Row:
        return dict(self.values)[value]

    @cached_property
    def noise(self) -> TableNoise:
        """The column's rows under the ablation tables' rule."""
        return judge([row for _, row in self.values])

    def cell(self, value: str) -> str:
        """``mean ± std`` with ``(best)``, ``≈`` (not resolved from the best) or ``?`` (not
        tested) against the column's best; nothing when it is surely below it."""
        row = self.row(value)
        std = "—" if row.std is None else f"{row.std:.4f}"
        judged = self.noise.judged[[v for v, _ in self.values].index(value)]
        marks = {None: " ?", False: " ≈", True: ""}
        mark = " (best)" if judged.leader else marks[judged.below]
        return f"{row.mean:.4f} ± {std}{mark}"


@dataclass(frozen=True)
class Study:
    """The study's columns (fixed and tuned, by axis) and the protocol they ran under; and,
    where committed, the model column cross-validated (its own benchmark)."""

    benchmark: str
    fixed: dict[str, Column]
    tuned: dict[str, Column]
    protocol: dict[str, object]
    cross_validated: Column | None = None
    #: The tuned columns today's replaced (full schedule, one shared space), by axis.
    replaced: dict[str, Column] = field(default_factory=dict)


def _one_budget(columns: Iterable[Column], name: str) -> int:
    """A field of the tuning budget every row of ``columns`` shares (an error when they
    differ)."""
    counts = {
        int(r.tuning["tuning"].get(name) or 0)
        for column in columns
        for _, row in column.values
        for r in row.records
    }
    if len(counts) != 1:
        raise SystemExit(f"study_tables: error: tuned rows of several budgets: {name} {counts}")
    return counts.pop()


def schedule_of(column: Column) -> str:
    """``halving`` or ``full``: the tuning schedule of a tuned column's rows."""
    kinds = {str(r.tuning["tuning"].get("schedule") or "full") for r in _records(column)}
    if len(kinds) != 1:
        raise SystemExit(f"study_tables: error: {column.axis}: rows of several schedules {kinds}")
    return kinds.pop()


def _records(column: Column) -> list[Record]:
    return [r for _, row in column.values for r in row.records]


def budget_heading(column: Column) -> str:
    """A tuned column's heading from its records' budget: ``tuned: 6 trials, halving (eta 2,
    from 20 epochs), own spaces`` (a component declared some of the space) or ``tuned: 6
    trials, full, one space``."""
    trials = _one_budget([column], "trials")
    own = any(
        field.get("from") not in (None, "protocol")
        for r in _records(column)
        for field in (r.tuning.get("space") or {}).values()
    )
    if schedule_of(column) == "halving":
        eta, low = _one_budget([column], "eta"), _one_budget([column], "min_epochs")
        schedule = f"halving (eta {eta}, from {low} epochs)"
    else:
        schedule = "full"
    return f"tuned: {trials} trials, {schedule}, {'own spaces' if own else 'one space'}"


def ablation_values(table: Path) -> list[str]:
    """The values of a committed ablation table, in its order (read from its JSON twin)."""
    twin = read_twin(table)
    if twin is None or twin.get("kind") != "ablation":
        raise SystemExit(f"study_tables: error: {table.name}: no ablation table's JSON twin")
    return [str(row["value"]) for row in twin["rows"]]


def ablation_keys(table: Path) -> list[tuple[str, str]]:
    """(value, entry key) of each row of a committed ablation table (from its JSON twin)."""
    twin = read_twin(table)
    if twin is None or twin.get("kind") != "ablation":
        raise SystemExit(f"study_tables: error: {table.name}: no ablation table's JSON twin")
    return [(str(row["value"]), str(row["key"])) for row in twin["rows"]]


def design_keys(design: Path) -> list[tuple[str, str]]:
    """(value, entry key) of each value of an ablation's design file."""
    try:
        data = json.loads(design.read_text(encoding="utf-8"))
        return [(str(v["value"]), str(v["key"])) for v in data["values"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"study_tables: error: {design}: not a design ({exc})") from None


def keyed(made: Iterable[Row], axis: str, pairs: Sequence[tuple[str, str]]) -> Column:
    """The column of ``pairs`` (value, entry key): each key's row (an error naming a key that
    no record has)."""
    by_key = {row.entry.key: row for row in made}
    for value, key in pairs:
        if key not in by_key:
            raise SystemExit(f"study_tables: error: {axis} = {value}: no records of {key}")
    return Column(axis, tuple((value, by_key[key]) for value, key in pairs))


def _others(entry: Entry, axis: str) -> tuple[str, ...]:
    """What an entry holds besides ``axis`` (and a tuned entry's own values)."""
    return (*(str(getattr(entry, f)) for f in _FIELDS if f != axis), entry.encoder or "", entry.tta)


def column(made: Iterable[Row], axis: str, values: Sequence[str]) -> Column:
    """The untuned rows of ``values``: the one group of entries that differ only on ``axis``
    and cover every value (an error when none or several do). Tuned columns are taken by key
    (``keyed``)."""
    groups: dict[tuple[str, ...], dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in made:
        if not row.entry.tuned:
            groups[_others(row.entry, axis)][str(getattr(row.entry, axis))].append(row)
    covering = [g for g in groups.values() if all(len(g.get(v, ())) == 1 for v in values)]
    if len(covering) != 1:
        raise SystemExit(
            f"study_tables: error: {len(covering)} fixed groups of records cover {axis} = "
            f"{', '.join(values)} (expected one)"
        )
    return Column(axis, tuple((v, covering[0][v][0]) for v in values))


def load_study(boards: Path = BOARDS, records: Path = RECORDS) -> Study:
    """The columns of every axis that has a committed ablation table, from the records: the
    study's benchmark (the one with tuned tables) and its cross-validated model table."""
    tables = sorted(boards.glob("*.ablation-*.md"))
    studies = {t.name.split(".ablation-")[0] for t in tables if t.name.endswith("-tuned.md")}
    if len(studies) != 1:
        raise SystemExit(f"study_tables: error: tuned ablation tables of {len(studies)} benchmarks")
    benchmark = studies.pop()
    found = [r for _, r in iter_records(records)]
    made = rows(found, benchmark)
    fixed, tuned, replaced = {}, {}, {}
    for axis in FIXED:
        fixed[axis] = column(made, axis, ablation_values(_table(boards, benchmark, axis)))
        tuned[axis] = keyed(made, axis, ablation_keys(_table(boards, benchmark, f"{axis}-tuned")))
        design = records / benchmark / REPLACED / f"{axis}-tuned.json"
        if design.is_file() and design_keys(design) != tuned[axis].keys():
            replaced[axis] = keyed(made, axis, design_keys(design))
    protocol = dict(made[0].records[0].benchmark["protocol"]["fields"])
    cross = _cross_validated(boards, benchmark, found)
    return Study(benchmark, fixed, tuned, protocol, cross, replaced)


def _cross_validated(boards: Path, benchmark: str, found: Sequence[Record]) -> Column | None:
    """The model table of the study's dataset cross-validated, if one is committed."""
    dataset = benchmark.split("__", 1)[1]
    for table in sorted(boards.glob(f"*__{dataset}.ablation-model.md")):
        other = table.name.split(".ablation-")[0]
        if other != benchmark:
            made = rows(found, other)
            return column(made, "model", ablation_values(table))
    return None


def _table(boards: Path, benchmark: str, name: str) -> Path:
    return boards / f"{benchmark}.ablation-{name}.md"


def _short(value: object) -> str:
    """0.003 as ``3e-3``."""
    mantissa, exponent = f"{float(value):e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def fixed_table(study: Study) -> str:
    columns = [study.fixed[axis] for axis in FIXED]
    lines = [_line([c for title in FIXED.values() for c in (title, "")])]
    lines.append(_line(["---"] * 2 * len(columns)))
    for i in range(max(len(c.values) for c in columns)):
        cells: list[str] = []
        for c in columns:
            cells += [c.values[i][0], c.cell(c.values[i][0])] if i < len(c.values) else ["", ""]
        lines.append(_line(cells))
    return "\n".join(lines)


def tuned_table(study: Study, axis: str) -> str:
    """The axis at the protocol's values, tuned under today's budget and, where kept, under
    the budget it replaced; each tuned column with the values it chose."""
    fixed, tuned = study.fixed[axis], study.tuned[axis]
    replaced = study.replaced.get(axis)
    budget = f"fixed: lr {_short(study.protocol['lr'])}, weight decay "
    budget += _short(study.protocol["weight_decay"])
    tuned_columns = [c for c in (replaced, tuned) if c is not None]
    headings = [TUNED[axis], budget]
    for c in tuned_columns:
        headings += [budget_heading(c), "values chosen"]
    lines = [_line(headings), _line(["---"] * len(headings))]
    for value, _ in tuned.values:
        cells = [value, fixed.cell(value) if value in dict(fixed.values) else "—"]
        for c in tuned_columns:
            if value in dict(c.values):
                chosen = ", ".join(f"{k}={v:.3g}" for k, v in c.row(value).chosen.items())
                cells += [c.cell(value), chosen]
            else:
                cells += ["—", ""]
        lines.append(_line(cells))
    return "\n".join(lines)


def _verdict(column: Column, value: str) -> str:
    """``best``, ``≈``, ``below`` or ``?``: a row's verdict within its column."""
    judged = column.noise.judged[[v for v, _ in column.values].index(value)]
    return "best" if judged.leader else {None: "?", False: "≈", True: "below"}[judged.below]


def changes_table(study: Study) -> str:
    """Each tuned row under the budget it replaced and under today's: its verdict in each
    table, the change in mean Dice, and whether the two rows of the entry are resolved from
    each other (the tables' rule, on those two rows alone)."""
    lines = [
        _line(["Table", "value", "verdict, full", "verdict, halving", "change", "the change"]),
        _line(["---", "---", "---", "---", "---:", "---"]),
    ]
    for axis in TUNED:
        made = _by_schedule(study, axis)
        if len(made) < 2:
            continue
        before, after = made["full"], made["halving"]
        for value, row in after.values:
            if value not in dict(before.values):
                continue
            pair = judge([before.row(value), row])
            resolved = any(j.below for j in pair.judged)
            lines.append(
                _line(
                    [
                        axis,
                        value,
                        _verdict(before, value),
                        _verdict(after, value),
                        f"{row.mean - before.row(value).mean:+.4f}",
                        "resolved" if resolved else "within noise",
                    ]
                )
            )
    return "\n".join(lines)


def _hours(rows: Iterable[Row]) -> tuple[float, float]:
    """Device-hours of ``rows``' seeds and of their tuning trials, each entry counted once."""
    once = {row.entry.key: row for row in rows}
    seeds = trials = 0.0
    for row in once.values():
        total = row.device_hours()
        if total is None:
            raise SystemExit(f"study_tables: error: {row.entry.key}: a record without wall_s")
        seeds += total - row.trial_device_hours
        trials += row.trial_device_hours
    return seeds, trials


def _by_schedule(study: Study, axis: str) -> dict[str, Column]:
    """An axis's tuned columns by schedule (``full``, ``halving``): today's and the replaced."""
    columns = [c for c in (study.replaced.get(axis), study.tuned[axis]) if c is not None]
    return {schedule_of(c): c for c in columns}


def cost_table(study: Study) -> str:
    """Each tuned table's device-hours from its records, under each schedule it was made with,
    and for the study as a whole (an entry in several tables counted once): seeds + trials,
    and their ratio to the seeds alone, which are what a fixed table of the same entries costs
    on the same machine in the same batch; beside them the committed fixed tables' own
    device-hours. A schedule an axis was not made with is ``—``."""
    schedules = ("full", "halving")
    headings = ["Table", "entries", "fixed tables"]
    for schedule in schedules:
        headings += [f"tuned, {schedule}: seeds + trials", "/ its seeds"]
    headings.append("halving / fixed tables")
    lines = [_line(headings), _line(["---"] + ["---:"] * (len(headings) - 1))]
    groups = [(axis, [axis]) for axis in TUNED] + [("the study (each entry once)", list(TUNED))]
    for title, axes in groups:
        fixed = sum(_hours(r for a in axes for _, r in study.fixed[a].values))
        entries = len({r.entry.key for a in axes for _, r in study.tuned[a].values})
        cells = [title, str(entries), f"{fixed:.2f} h"]
        totals: dict[str, float] = {}
        for schedule in schedules:
            made = [_by_schedule(study, a).get(schedule) for a in axes]
            if any(c is None for c in made):
                cells += ["—", "—"]
                continue
            seeds, trials = _hours(r for c in made for _, r in c.values)
            totals[schedule] = seeds + trials
            cells += [f"{seeds:.2f} + {trials:.2f} h", f"{totals[schedule] / seeds:.2f}x"]
        cells.append(f"{totals['halving'] / fixed:.2f}x" if "halving" in totals else "—")
        lines.append(_line(cells))
    return "\n".join(lines)


def cross_validated_table(study: Study) -> str:
    """The models on the protocol's fold (over its seeds) beside the same models
    cross-validated (each fold's Dice, their mean ± std over folds)."""
    cv, fixed = study.cross_validated, study.fixed["model"]
    assert cv is not None
    folds = sorted({r.fold for _, row in cv.values for r in row.records if r.fold is not None})
    seeds = _count({r.seed for _, row in cv.values for r in row.records}, "seed")
    fixed_seeds = _count({r.seed for _, row in fixed.values for r in row.records}, "seed")
    lines = [
        _line(
            [
                "Model (Dice loss)",
                f"fold {study.protocol['fold']}, {fixed_seeds}",
                f"{len(folds)} folds × {seeds}",
                *(f"fold {f}" for f in folds),
            ]
        ),
        _line(["---"] * (3 + len(folds))),
    ]
    for value, row in cv.values:
        by_fold = row.by_seed()
        shown = fixed.cell(value) if value in dict(fixed.values) else "—"
        per_fold = [f"{by_fold[f]:.4f}" if f in by_fold else "—" for f in folds]
        lines.append(_line([value, shown, cv.cell(value), *per_fold]))
    return "\n".join(lines)


def _count(items: set, noun: str) -> str:
    """``3 seeds``, ``1 seed``."""
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def blocks(study: Study) -> dict[str, str]:
    """Every generated table by its marker name."""
    out = {"fixed": fixed_table(study)}
    out.update({f"tuned-{axis}": tuned_table(study, axis) for axis in TUNED})
    out["tuned-cost"] = cost_table(study)
    if study.replaced:
        out["tuned-changes"] = changes_table(study)
    if study.cross_validated is not None:
        out["cross-validated-model"] = cross_validated_table(study)
    return out


def _marker(name: str) -> re.Pattern[str]:
    name = re.escape(name)
    return re.compile(
        rf"(<!-- study-tables:{name} -->\n)(.*?)(<!-- /study-tables:{name} -->)", re.S
    )


def rewrite(text: str, tables: dict[str, str]) -> str:
    """``text`` with each marked block replaced by its table (an error for a missing marker)."""
    for name, table in tables.items():
        pattern = _marker(name)
        if len(pattern.findall(text)) != 1:
            raise SystemExit(f"study_tables: error: {DOC.name}: no single block {name!r}")
        text = pattern.sub(lambda m, t=table: f"{m[1]}\n{t}\n\n{m[3]}", text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the doc differs")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args()
    text = args.doc.read_text(encoding="utf-8")
    made = rewrite(text, blocks(load_study()))
    if made == text:
        print(f"{args.doc}: the study's tables match the records")
        return 0
    if args.check:
        print(
            f"{args.doc}: the study's tables differ from the records; run scripts/study_tables.py"
        )
        return 1
    args.doc.write_text(made, encoding="utf-8")
    print(f"{args.doc}: the study's tables rewritten from the records")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
