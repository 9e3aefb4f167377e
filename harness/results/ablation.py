"""Ablation tables: one axis of the entry varied, everything else fixed (``harness sweep``,
``harness tune --vary``), in the shape papers publish (Loss | Dice), beside the benchmark's
leaderboard, each with its JSON twin (its markdown: ``harness.results.markdown``).

The twin names each value's entry (by its key), so ``harness leaderboard`` regenerates an
ablation table from the records alone, as it does the leaderboard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import visible
from harness.results import sensitivity
from harness.results.judging import judge
from harness.results.publish import publish
from harness.results.records import Unusable
from harness.results.rows import Row
from harness.results.significance import BEST, verdict
from harness.results.tables import Say


def ablation_file(main_table: Path, axis: str, tuned: bool = False) -> Path:
    """``<benchmark>.ablation-<axis>.md`` beside ``main_table`` (``-tuned``: tuned entries)."""
    return main_table.with_name(f"{main_table.stem}.ablation-{axis}{'-tuned' if tuned else ''}.md")


def ablation_data(
    axis: str,
    table_rows: Sequence[tuple[str, str | None, Row | None]],
    benchmark_id: str,
    *,
    runs_of: Mapping[int, str] | None = None,
    excluded: Sequence[Unusable] = (),
    budget: str | None = None,
) -> dict[str, Any]:
    """An ablation table as data: per value (in the order given) its entry key and its row
    (None: no succeeded run), its Dice, ±, n, interval, the verdict against the best (the
    leaderboard's rule, on a noise model of this table's rows alone: ``noise``) and, tuned,
    the values chosen; and the records each row was made from."""
    present = [row for _, _, row in table_rows if row is not None]
    judged = judge(present)
    by_row = {id(row): j for row, j in zip(present, judged.judged, strict=True)}
    out = []
    for value, key, row in table_rows:
        if row is None:
            out.append({"value": value, "key": key, "n": 0, "runs": []})
            continue
        mine = by_row[id(row)]
        out.append(
            {
                "value": value,
                "key": key,
                "entry": row.entry.label,
                "mean_dice": row.mean,
                "std": row.std,
                "n": len(row.records),
                **mine.data(),
                "vs_best": verdict(mine.leader, mine.below, BEST),
                "chosen": row.chosen,
                "seeds": [r.seed for r in row.records],
                "dice_by_seed": {str(s): d for s, d in row.by_seed().items()},
                "runs": sorted((runs_of or {}).get(id(r), "") for r in row.records),
            }
        )
    summary = judged.summary()
    # The model's rows, as rows of this table (the values without a run are not in it).
    where = [i for i, (_, _, row) in enumerate(table_rows) if row is not None]
    summary["rows"] = [where[i] for i in summary["rows"]]
    if "reference" in summary:
        summary["reference"] = where[summary["reference"]]
    return {
        "kind": "ablation",
        "benchmark_id": benchmark_id,
        "axis": axis,
        "budget": budget,
        "excluded": [{"path": visible(u.path.as_posix()), "reason": u.reason} for u in excluded],
        "noise": summary,
        "rows": out,
    }


def write_ablation_table(
    path: Path,
    data: Mapping[str, Any],
    runs_dir: Path,
    say: Say | None = None,
) -> Path | None:
    """Publish an ablation table (``harness.results.publish``): its twin, markdown and page,
    and for a tuned one its picture of every trial (``harness.results.sensitivity``), where
    no run is lost; return the path written (None: the table there was kept and none could
    be written)."""
    written = publish(path, lambda: data, runs_dir, say)
    if written is not None:
        sensitivity.draw(written, data, runs_dir)
    return written
