"""A benchmark's leaderboard: its data (the JSON twin) made from the records, and regenerated.

A table is a pure function of its records (same records, same bytes): ``table_data`` makes
the twin from the rows (``harness.results.rows``), sorted by mean Dice, with nothing
time-dependent in it; ``regenerate`` reads the records and publishes the table under its
lock (``harness.results.publish``), so runs finishing at once never lose a row. The markdown
and the page are views of the twin (``harness.results.markdown``, ``harness.results.pages``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.classes import CLASSES
from harness.errors import HarnessError, visible
from harness.results import columns, speed
from harness.results.judging import Judgement, judge
from harness.results.publish import publish
from harness.results.records import Record, Unusable, hardware_kind, iter_records, scan_records
from harness.results.rows import Row, precisions, rows
from harness.results.significance import verdict
from harness.results.tables import Say

#: Hears each record a regenerated table leaves out (``Unusable``, its path as found).
Report = Callable[[Unusable], None]


def leaderboard_path(leaderboards_dir: Path, benchmark_id: str) -> Path:
    return Path(leaderboards_dir) / f"{benchmark_id}.md"


def table_data(
    benchmark: dict,
    table_rows: Sequence[Row],
    runs_of: Mapping[int, str] | None = None,
    excluded: Sequence[Unusable] = (),
) -> dict:
    """A leaderboard as data: what its markdown shows, and each row's seeds, per-class Dice and
    the records it was made from (``runs_of``: a record's id to its path in the runs folder);
    its noise model (``noise``, ``harness.results.judging``) and each row's judgement."""
    small: list[str] = list(benchmark.get("small_bones") or [])
    mixed = precisions(table_rows)
    judged = judge(table_rows)
    # Named only in a table that mixes precisions (the twins of the others stay as they were).
    precision = {"precisions": mixed} if len(mixed) > 1 else {}
    return {
        "kind": "leaderboard",
        "benchmark": benchmark,
        "columns": [column.name for column in columns.LEADERBOARD],
        "small_bones": small,
        "budgets": sorted({row.budget for row in table_rows}),
        "hardware": sorted({hardware_kind(r.hardware) for row in table_rows for r in row.records}),
        "inference": sorted(
            {passes for row in table_rows for r in row.records for passes in _inference(r)}
        ),
        **_speed_data(table_rows),
        **precision,
        "excluded": [{"path": visible(u.path.as_posix()), "reason": u.reason} for u in excluded],
        "noise": judged.summary(),
        "rows": [
            _row_data(rank, row, judged.judged[rank - 1], small, runs_of or {})
            for rank, row in enumerate(table_rows, 1)
        ],
    }


def _row_data(
    rank: int, row: Row, judged: Judgement, small: Sequence[str], runs_of: Mapping[int, str]
) -> dict:
    per_class = row.per_class()
    worst = min(CLASSES, key=lambda c: (per_class[c], c))
    params = row.cost("parameters")
    noise, by_images = row.noise()
    return {
        "rank": rank,
        "entry": row.entry.label,
        "key": row.entry.key,
        "mean_dice": row.mean,
        "std": row.std,
        "noise": noise,
        "noise_is_se": by_images,
        "n": len(row.records),
        **judged.data(),
        "vs_leader": verdict(judged.leader, judged.below),
        "worst_class": {"class": worst, "dice": per_class[worst]},
        "small_bone_dice": row.small_bone_dice(small),
        "params_m": params / 1e6 if params else None,
        "gflops": _gflops(row),
        **_figure("train", speed.row_figure(map(speed.train_figure, row.records))),
        **_figure("inference", speed.row_figure(map(speed.inference_figure, row.records))),
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


def _inference(record: Record) -> list[tuple[int, int]]:
    """The inference passes (warm-up, timed) of a record's run and of its quiet pass."""
    found = []
    for source in (record.cost, speed.quiet_of(record) or {}):
        if source.get("inference_timed"):
            found.append((source["inference_warmup"], source["inference_timed"]))
    return found


def _gflops(row: Row) -> float | None:
    """The mean GFLOPs of the row's records: each run's, else its quiet pass's (a count of
    the same model's operations, wherever it was taken)."""
    values = [r.cost.get("gflops") or (speed.quiet_of(r) or {}).get("gflops") for r in row.records]
    found = [v for v in values if v]
    return statistics.fmean(found) if found else None


def _figure(name: str, figure: speed.Figure | None) -> dict:
    """A row's throughput (``<name>_images_per_s``) and its kind (``<name>_figure``)."""
    return {
        f"{name}_images_per_s": None if figure is None else figure.value,
        f"{name}_figure": None if figure is None else figure.kind,
    }


def _speed_data(table_rows: Sequence[Row]) -> dict:
    """The timed windows of the training figures the rows show, and the quiet passes they
    came from (for the header's note: ``harness.results.markdown``)."""
    shown = [f for row in table_rows for f in speed.used(map(speed.train_figure, row.records))]
    return {
        "train_windows": [list(s) for s in sorted({f.steps for f in shown if f.steps})],
        "quiet_passes": [list(q) for q in sorted({f.quiet for f in shown if f.quiet})],
    }


def regenerate(
    benchmark_id: str,
    runs_dir: Path,
    leaderboards_dir: Path,
    report: Report | None = None,
    say: Say | None = None,
) -> Path | None:
    """Rebuild one benchmark's table (twin, markdown, heatmap, page) from every record under
    ``runs_dir``, safely; return the path written (None: none could be, and that was said).

    The lock covers reading the records as well as writing the table: two runs finishing
    at once each regenerate after the other's record is visible, so no row is lost. A record
    of this benchmark that cannot be used is listed in the table's header and given to
    ``report``, never dropped silently. A table there whose runs this folder lacks is kept,
    and this one goes under ``<runs_dir>/leaderboards/`` (``harness.results.publish``; ``say``
    hears the one line).
    """
    runs_dir = Path(runs_dir)

    def made() -> dict:  # under the table's lock: every record written before it is read
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
        runs_of = {id(r): p.relative_to(runs_dir).as_posix() for p, r in mine}
        shown = [_relative(u, runs_dir) for u in excluded]
        return table_data(benchmark, rows(records, benchmark_id), runs_of, shown)

    return publish(leaderboard_path(leaderboards_dir, benchmark_id), made, runs_dir, say)


def _relative(unusable: Unusable, runs_dir: Path) -> Unusable:
    """As a table names it: relative to the runs folder (same records, same bytes)."""
    return Unusable(unusable.path.relative_to(runs_dir), unusable.reason, unusable.benchmark)


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
