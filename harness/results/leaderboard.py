"""Leaderboards: markdown tables regenerated from records, never edited by hand.

A table is a pure function of its records (same records, same bytes): rows are sorted
by mean Dice, numbers are formatted with fixed precision and nothing time-dependent is
written. Updates take a file lock and replace the file atomically, so runs finishing
at once never lose a row.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from harness.classes import CLASSES
from harness.components.entry import Entry
from harness.errors import HarnessError
from harness.pictures.charts import heatmap
from harness.results.pages import write_pages
from harness.results.records import Record, Unusable, hardware_kind, iter_records, scan_records
from harness.results.significance import (
    METHOD,
    Comparison,
    bootstrap_se,
    compare_images,
    compare_seeds,
    paired_seeds,
)
from harness.results.tables import Contents, Say, place, read_twin, write_table

DICE_DEFINITION = (
    "Dice per image and class is (2|P∩G| + 1e-4) / (|P| + |G| + 1e-4) on binary masks at the "
    "image's original resolution (logits upsampled bilinearly, sigmoid > 0.5); averaged over "
    "images per class, then over the 29 classes. Empty prediction on empty truth scores 1. "
    "Rows rank by the final epoch's Dice; the best epoch is never used."
)


@dataclass(frozen=True)
class Row:
    """One entry's succeeded runs, aggregated: over seeds, or (a cross-validated benchmark)
    over folds, each fold's Dice the mean over its seeds."""

    entry: Entry
    records: tuple[Record, ...]

    @property
    def cross_validated(self) -> bool:
        return any(r.fold is not None for r in self.records)

    @property
    def dice(self) -> list[float]:
        """One value per unit (seed, or fold), in unit order."""
        return list(self.by_seed().values())

    @property
    def mean(self) -> float:
        return statistics.fmean(self.dice)

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.dice) if len(self.dice) > 1 else None

    def per_class(self) -> dict[str, float]:
        return {c: statistics.fmean(r.per_class_dice[c] for r in self.records) for c in CLASSES}

    def cost(self, key: str) -> float | None:
        values = [r.cost[key] for r in self.records if r.cost.get(key) is not None]
        return statistics.fmean(values) if values else None

    @property
    def device(self) -> str:
        """The devices of the row's runs: each with its CPU's model where recorded, and
        the precision it trained in when not fp32."""
        return ", ".join(sorted({device_text(r) for r in self.records}))

    def by_seed(self) -> dict[int, float]:
        """Mean Dice per unit: per seed, or for a cross-validated row per fold (the mean over
        that fold's seeds); the noise test pairs rows by these units."""
        units: dict[int, list[float]] = {}
        for r in sorted(self.records, key=_unit_order):
            if r.mean_dice is not None:
                units.setdefault(_unit(r), []).append(float(r.mean_dice))
        return {unit: statistics.fmean(values) for unit, values in units.items()}

    def per_image(self, seed: int) -> dict[str, float]:
        """Mean over classes of each validation image's Dice, for one unit (seed or fold)."""
        for r in sorted(self.records, key=_unit_order):
            if _unit(r) == seed and r.per_image_dice and len(r.val_images) == len(r.per_image_dice):
                return {
                    name: statistics.fmean(scores)
                    for name, scores in zip(r.val_images, r.per_image_dice, strict=True)
                }
        return {}

    def noise(self) -> tuple[float | None, bool]:
        """The ± of the row: std over seeds (or folds), or (one unit) the bootstrap s.e. over
        images."""
        if len(self.dice) > 1:
            return self.std, False
        images = self.per_image(next(iter(self.by_seed()), self.records[0].seed))
        return bootstrap_se(list(images.values())), True

    def device_hours(self) -> float | None:
        """Summed over seeds; a run on N processes (devices) counts N times its wall time; a
        tuned entry adds its tuning trials' device-hours (once: every seed shares them)."""
        values = [r.cost.get("wall_s") for r in self.records]
        if any(v is None for v in values):
            return None
        seeds = sum(
            v * int(r.cost.get("processes") or 1) for v, r in zip(values, self.records, strict=True)
        )
        return seeds / 3600 + self.trial_device_hours

    @property
    def trial_device_hours(self) -> float:
        """What the tuning trials of a tuned entry cost (0 for an entry that was not tuned)."""
        return max((float(r.tuning.get("trial_device_hours", 0)) for r in self.records), default=0)

    @property
    def budget(self) -> str:
        """The tuning budget of the row in words (``fixed`` for the protocol's values)."""
        for r in self.records:
            if r.tuning.get("budget"):
                return str(r.tuning["budget"])
        if self.entry.hparams:
            return "set by hand (--hparam)"
        return "fixed (the protocol's values)"

    def small_bone_dice(self, small: Sequence[str]) -> float | None:
        if not small:
            return None
        per_class = self.per_class()
        return statistics.fmean(per_class[c] for c in small)


def _unit(record: Record) -> int:
    """What a row's noise test pairs by: the fold of a cross-validated run, else the seed."""
    return record.seed if record.fold is None else record.fold


def _unit_order(record: Record) -> tuple[int, int]:
    return (_unit(record), record.seed)


def device_text(record: Record) -> str:
    """A run's device as the Device column shows it: ``cpu (2 threads)``, with the CPU's
    model where the record names it (``cpu (2 threads) · AMD EPYC``) and the precision it
    trained in when not fp32 (``NVIDIA A100 · bf16``)."""
    device = str(record.cost.get("device", "?"))
    model = record.hardware.get("cpu", {}).get("model") if record.hardware else None
    if model and not record.hardware.get("gpus"):
        device = f"{device} · {model}"
    precision = record.cost.get("precision")
    return device if precision in (None, "fp32") else f"{device} · {precision}"


def precisions(table_rows: Sequence[Row]) -> list[str]:
    """The precisions the table's runs trained in (a record without one is not counted)."""
    found = {r.cost.get("precision") for row in table_rows for r in row.records}
    return sorted(str(p) for p in found if p is not None)


def versus_leader(leader: Row, row: Row) -> Comparison:
    """The paired test of ``row`` against ``leader`` (see harness.results.significance)."""
    a, b = leader.by_seed(), row.by_seed()
    shared = paired_seeds(a, b)
    if len(shared) >= 2:
        return compare_seeds([a[s] for s in shared], [b[s] for s in shared])
    if shared:
        ia, ib = leader.per_image(shared[0]), row.per_image(shared[0])
        names = sorted(set(ia) & set(ib))
        return compare_images([ia[n] for n in names], [ib[n] for n in names])
    return Comparison("n/a", within_noise=True)


def leaderboard_path(leaderboards_dir: Path, benchmark_id: str) -> Path:
    return Path(leaderboards_dir) / f"{benchmark_id}.md"


def rows(records: Iterable[Record], benchmark_id: str) -> list[Row]:
    """Succeeded records of one benchmark, grouped by entry, best mean Dice first."""
    groups: dict[str, list[Record]] = defaultdict(list)
    entries: dict[str, Entry] = {}
    for record in records:
        if record.status != "succeeded" or record.benchmark.get("id") != benchmark_id:
            continue
        entry = Entry.from_dict(_names_only(record.entry))
        groups[entry.key].append(record)
        entries[entry.key] = entry
    out = [Row(entries[k], tuple(sorted(v, key=lambda r: r.seed))) for k, v in groups.items()]
    return sorted(out, key=lambda r: (-r.mean, r.entry.label))


def _names_only(entry: dict) -> dict:
    """An entry as the leaderboard keys it: names and parameters, not provider versions."""
    return {
        k: (
            {"name": v["name"], "params": v.get("params", {})}
            if isinstance(v, dict) and "name" in v
            else v
        )
        for k, v in entry.items()
    }


def _num(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render(
    benchmark: dict,
    table_rows: Sequence[Row],
    picture: str | None = None,
    excluded: Sequence[Unusable] = (),
) -> str:
    """The markdown leaderboard of one benchmark; ``excluded`` records are listed in its header."""
    return render_data(table_data(benchmark, table_rows, excluded=excluded), picture)


def header_lines(data: dict) -> list[str]:
    """The table's title and notes (dataset, protocol, Dice, runs, noise, budgets, excluded)."""
    benchmark = data["benchmark"]
    protocol = benchmark["protocol"]
    dataset = benchmark["dataset"]
    settings = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(protocol["fields"].items()))
    return [
        f"# Leaderboard: {protocol['label']} on {dataset['name']}",
        "",
        f"- **Dataset**: `{dataset['name']}`, fingerprint `{dataset['fingerprint'][:16]}`",
        f"- **Protocol**: `{protocol['label']}`, hash `{protocol['hash']}` — {settings}",
        f"- **Dice**: {DICE_DEFINITION}",
        *_runs_text(data),
        f"- **Noise**: {METHOD}",
        f"- **Small bones**: {_small_bones_text(data['small_bones'])}",
        f"- **Inference**: {_inference_text(data.get('inference', []))}",
        *_budget_text(data["budgets"]),
        *_hardware_text(data.get("hardware", [])),
        *_precision_text(data.get("precisions", [])),
        *excluded_lines([Unusable(Path(u["path"]), u["reason"]) for u in data["excluded"]]),
    ]


#: The main table's columns, as its markdown and its twin name them.
COLUMNS = (
    "#",
    "Entry",
    "Mean Dice",
    "±",
    "n",
    "vs #1",
    "Worst class",
    "Small-bone Dice",
    "Params (M)",
    "GFLOPs",
    "Train img/s",
    "Infer img/s",
    "Peak mem (MB)",
    "Device-hours",
    "Device",
)


#: The main table's header line, as its markdown shows it.
HEADER_LINE = "| " + " | ".join(COLUMNS) + " |"


def row_line(row: Mapping) -> str:
    """One row of the main table (a row of ``table_data``), as its markdown shows it."""
    noise = row["noise"]
    worst = row["worst_class"]
    return (
        f"| {row['rank']} | {row['entry']} | {row['mean_dice']:.4f} | {_num(noise, 4)}"
        f"{'ᵇ' if row['noise_is_se'] and noise is not None else ''} "
        f"| {row['n']} | {row['vs_leader']} | {worst['class']} {worst['dice']:.4f} "
        f"| {_num(row['small_bone_dice'], 4)} "
        f"| {_num(row['params_m'], 2)} "
        f"| {_num(row.get('gflops'), 2)} "
        f"| {_num(row['train_images_per_s'], 1)} "
        f"| {_num(row.get('inference_images_per_s'), 1)} "
        f"| {_num(row['peak_memory_mb'], 0)} "
        f"| {_num(row['device_hours'], 4)} | {row['device']} |"
    )


def row_text(table: Path, label: str) -> str:
    """The header line and the row of entry ``label`` of the leaderboard at ``table``, as its
    markdown shows them (the row empty when there is none): made from the table's JSON twin,
    or read from the markdown of a table written before twins existed."""
    twin = read_twin(table)
    if twin is not None and twin.get("kind") == "leaderboard":
        row = next((row_line(r) for r in twin["rows"] if r["entry"] == label), "")
        return f"{HEADER_LINE}\n{row}"
    lines = Path(table).read_text(encoding="utf-8").splitlines()
    header = next(line for line in lines if line.startswith("| # |"))
    row = next((line for line in lines if line.startswith("| ") and f"| {label} |" in line), "")
    return f"{header}\n{row}"


def render_data(data: dict, picture: str | None = None) -> str:
    """The markdown of a leaderboard's data (``table_data``, the JSON twin)."""
    lines = [
        *header_lines(data),
        "",
        "Generated by `harness leaderboard` from the run records; do not edit by hand.",
        "",
        HEADER_LINE,
        "|---:|---|---:|---:|---:|:---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
        *(row_line(row) for row in data["rows"]),
    ]
    if not data["rows"]:
        lines.append("| — | no succeeded runs yet | | | | | | | | | | | | | |")
    lines += ["", "## Per-class Dice", ""]
    if picture:
        lines += [f"![Per-class Dice of every entry]({picture})", ""]
    lines.append("| Entry | " + " | ".join(CLASSES) + " |")
    lines.append("|---|" + "---:|" * len(CLASSES))
    for row in data["rows"]:
        per_class = row["per_class_dice"]
        lines.append(
            f"| {row['entry']} | " + " | ".join(f"{per_class[c]:.3f}" for c in CLASSES) + " |"
        )
    return "\n".join(lines) + "\n"


def table_data(
    benchmark: dict,
    table_rows: Sequence[Row],
    runs_of: Mapping[int, str] | None = None,
    excluded: Sequence[Unusable] = (),
) -> dict:
    """A leaderboard as data: what its markdown shows, and each row's seeds, per-class Dice and
    the records it was made from (``runs_of``: a record's id to its path in the runs folder)."""
    small: list[str] = list(benchmark.get("small_bones") or [])
    mixed = precisions(table_rows)
    # Named only in a table that mixes precisions (the twins of the others stay as they were).
    precision = {"precisions": mixed} if len(mixed) > 1 else {}
    return {
        "kind": "leaderboard",
        "benchmark": benchmark,
        "columns": list(COLUMNS),
        "small_bones": small,
        "budgets": sorted({row.budget for row in table_rows}),
        "hardware": sorted({hardware_kind(r.hardware) for row in table_rows for r in row.records}),
        "inference": sorted(
            {
                (r.cost["inference_warmup"], r.cost["inference_timed"])
                for row in table_rows
                for r in row.records
                if r.cost.get("inference_timed")
            }
        ),
        **precision,
        "excluded": [{"path": u.path.as_posix(), "reason": u.reason} for u in excluded],
        "rows": [
            _row_data(rank, row, table_rows[0], small, runs_of or {})
            for rank, row in enumerate(table_rows, 1)
        ],
    }


def _row_data(
    rank: int, row: Row, leader: Row, small: Sequence[str], runs_of: Mapping[int, str]
) -> dict:
    per_class = row.per_class()
    worst = min(CLASSES, key=lambda c: (per_class[c], c))
    params = row.cost("parameters")
    noise, by_images = row.noise()
    versus = None if rank == 1 else versus_leader(leader, row)
    return {
        "rank": rank,
        "entry": row.entry.label,
        "key": row.entry.key,
        "mean_dice": row.mean,
        "std": row.std,
        "noise": noise,
        "noise_is_se": by_images,
        "n": len(row.records),
        "vs_leader": "leader" if versus is None else _mark(versus),
        "test": None if versus is None else _test(versus),
        "worst_class": {"class": worst, "dice": per_class[worst]},
        "small_bone_dice": row.small_bone_dice(small),
        "params_m": params / 1e6 if params else None,
        "gflops": row.cost("gflops"),
        "train_images_per_s": row.cost("train_images_per_s"),
        "inference_images_per_s": row.cost("inference_images_per_s"),
        "peak_memory_mb": row.cost("peak_memory_mb"),
        "device_hours": row.device_hours(),
        "device": row.device,
        "budget": row.budget,
        "seeds": sorted({r.seed for r in row.records}),
        "folds": sorted({r.fold for r in row.records if r.fold is not None}),
        "dice_by_seed": {str(s): d for s, d in row.by_seed().items()},
        "per_class_dice": per_class,
        "runs": sorted(runs_of[id(r)] for r in row.records if id(r) in runs_of),
    }


def _test(versus: Comparison) -> dict:
    interval = list(versus.interval) if versus.interval is not None else None
    return {"method": versus.method, "p_value": versus.p_value, "interval": interval}


def budget_lines(table_rows: Sequence[Row]) -> list[str]:
    """The header's tuning line: the budget when every row was tuned under one, the budgets
    when rows differ, nothing when no row was tuned (the protocol's values, or a tuning's
    trials, each with its values set)."""
    return _budget_text(sorted({row.budget for row in table_rows}))


def _budget_text(budgets: Sequence[str]) -> list[str]:
    if len(budgets) == 1 and budgets[0].startswith("tuned"):
        return [
            f"- **Tuning**: every row was tuned under the same budget ({budgets[0]}); "
            "device-hours include the tuning trials."
        ]
    if len(budgets) < 2:
        return []
    return [
        "- **Tuning**: these rows were not all tuned under the same budget, so a rank across "
        "budgets compares tuning effort as well as components; device-hours include the "
        "tuning trials. Budgets:",
        *(f"  - {b}" for b in budgets),
    ]


def _precision_text(mixed: Sequence[str]) -> list[str]:
    if len(mixed) < 2:
        return []
    return [
        f"- **Precision**: these runs did not all train in the same precision "
        f"({', '.join(mixed)}); a rank across precisions compares numerics as well as "
        "components (the Device column names each run's precision when not fp32)."
    ]


def excluded_lines(excluded: Sequence[Unusable]) -> list[str]:
    """The header lines naming the records a table could not use (none: no lines)."""
    if not excluded:
        return []
    count = f"{len(excluded)} record{'s' if len(excluded) > 1 else ''}"
    return [
        f"- **Excluded**: {count} of this benchmark could not be used and "
        "{} not in this table (fix or remove {}, then regenerate):".format(
            "are" if len(excluded) > 1 else "is", "them" if len(excluded) > 1 else "it"
        ),
        *(f"  - `{u.path.as_posix()}` {u.reason}" for u in excluded),
    ]


def _runs_text(data: dict) -> list[str]:
    """The header's runs line; a cross-validated benchmark's says over which folds."""
    runs = sum(r["n"] for r in data["rows"])
    folds = data["benchmark"]["protocol"]["fields"].get("cv_folds")
    if not folds:
        return [
            f"- **Runs**: {runs} succeeded; n is the number of seeds of a row; ± is the "
            "standard deviation over seeds, or for one seed (marked ᵇ) the bootstrap standard "
            "error over validation images."
        ]
    total = data["benchmark"]["protocol"]["fields"].get("folds")
    return [
        f"- **Runs**: {runs} succeeded, cross-validated: every row is the entry trained on "
        f"each of folds {', '.join(map(str, folds))} of the protocol's {total} (each fold "
        "left out of training and validated on), times its seeds; the mean and ± are over "
        "folds (a fold's Dice the mean over its seeds), n is folds × seeds, and the noise "
        "test pairs rows by fold."
    ]


def _inference_text(passes: Sequence[Sequence[int]]) -> str:
    """How the GFLOPs and inference columns were measured (``harness.engine.inference_cost``)."""
    if not passes:
        return "GFLOPs and inference images/s were not measured in these records (— in the table)."
    timed = " or ".join(
        f"the median of {t} timed passes after {w} warm-up passes" for w, t in passes
    )
    return (
        "Infer img/s is the model alone at batch 1 on a 1 × C × R × R input already on the "
        "run's device (R the protocol's resolution; no data loading), in eval mode under the "
        f"run's precision: {timed}, synchronised on CUDA. GFLOPs per image are "
        "torch.utils.flop_counter's count of one such pass (a multiply-add is 2 FLOPs)."
    )


def _hardware_text(kinds: Sequence[str]) -> list[str]:
    """The header's hardware line: said only when the rows ran on more than one kind of
    machine (records from before hardware was recorded count as one unknown kind)."""
    if len(kinds) < 2:
        return []
    return [
        "- **Hardware**: these rows ran on more than one kind of machine, so a rank across "
        "them compares machines as well as components (CPU kernels differ). Machines:",
        *(f"  - {k or 'not recorded (a record from before the hardware was kept)'}" for k in kinds),
    ]


def _mark(comparison: Comparison) -> str:
    if comparison.method == "n/a":
        return "?"
    return "≈" if comparison.within_noise else "below"


def _small_bones_text(small: Sequence[str]) -> str:
    if not small:
        return "no small-bone set recorded for this benchmark."
    return f"the mean Dice over {', '.join(small)} (from the dataset's measured areas)."


def _fmt(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


#: Hears each record a regenerated table leaves out (``Unusable``, its path as found).
Report = Callable[[Unusable], None]


def regenerate(
    benchmark_id: str,
    runs_dir: Path,
    leaderboards_dir: Path,
    report: Report | None = None,
    say: Say | None = None,
) -> Path | None:
    """Rebuild one benchmark's table (markdown, JSON twin, heatmap) from every record under
    ``runs_dir``, safely; return the path written (None: none could be, and that was said).

    The lock covers reading the records as well as writing the table: two runs finishing
    at once each regenerate after the other's record is visible, so no row is lost. A record
    of this benchmark that cannot be used is listed in the table's header and given to
    ``report``, never dropped silently. A table there whose runs this folder lacks is kept,
    and this one goes under ``<runs_dir>/leaderboards/`` (``harness.results.tables.place``;
    ``say`` hears the one line).
    """
    path = leaderboard_path(leaderboards_dir, benchmark_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        found, unusable = scan_records(runs_dir)
        excluded = [u for u in unusable if u.benchmark == benchmark_id]
        for u in excluded:
            if report is not None:
                report(u)
        mine = [(p, r) for p, r in found if r.benchmark.get("id") == benchmark_id]
        if not mine:
            named = "".join(f"; {u}" for u in excluded)
            raise HarnessError(
                f"no records of benchmark {benchmark_id!r} under {runs_dir}; "
                f"run `harness run ...` first or pass --runs-dir{named}"
            )
        records = [r for _, r in mine]
        benchmark = min(records, key=lambda r: (r.status != "succeeded", r.seed)).benchmark
        table_rows = rows(records, benchmark_id)
        runs_of = {id(r): p.relative_to(runs_dir).as_posix() for p, r in mine}
        shown = [_relative(u, Path(runs_dir)) for u in excluded]
        data = table_data(benchmark, table_rows, runs_of, shown)
        target = place(path, contents_of(data), Path(runs_dir), say)
        if target is None:
            return None
        if target != path:
            with FileLock(str(target) + ".lock"):
                _write(target, data, table_rows, Path(runs_dir))
        else:
            _write(target, data, table_rows, Path(runs_dir))
    return target


def contents_of(data: Mapping, name: str = "entry") -> Contents:
    """What a table's data (a leaderboard's, or an ablation's with ``name`` ``value``) holds,
    as ``harness.results.tables.place`` checks it."""
    return Contents(
        runs=frozenset(run for row in data["rows"] for run in row["runs"]),
        excluded=frozenset(u["path"] for u in data["excluded"]),
        counts={row[name]: row["n"] for row in data["rows"]},
    )


def _write(path: Path, data: dict, table_rows: Sequence[Row], runs_dir: Path) -> None:
    """The heatmap, the twin, the markdown and the page of one leaderboard."""
    picture = heatmap_path(path)

    def draw(_: Path) -> None:
        heatmap([r.entry.label for r in table_rows], [r.per_class() for r in table_rows], picture)

    text = render_data(data, picture.name if table_rows else None)
    write_table(path, text, data, [draw] if table_rows else [])
    write_pages(path, text, data, runs_dir)


def _relative(unusable: Unusable, runs_dir: Path) -> Unusable:
    """As a table names it: relative to the runs folder (same records, same bytes)."""
    return Unusable(unusable.path.relative_to(runs_dir), unusable.reason, unusable.benchmark)


def heatmap_path(board: Path) -> Path:
    return board.with_name(f"{board.stem}.heatmap.png")


def benchmark_ids(runs_dir: Path) -> list[str]:
    return sorted({r.benchmark["id"] for _, r in iter_records(runs_dir)})


def resolve(target: str | None, runs_dir: Path) -> list[str]:
    """Benchmark ids named by a leaderboard file, a benchmark id, or (None) all with records."""
    if target is None:
        ids = benchmark_ids(runs_dir)
        if not ids:
            raise HarnessError(f"{runs_dir}: no run records found; pass --runs-dir")
        return ids
    name = Path(target).name.removesuffix(".md")
    return [name]
