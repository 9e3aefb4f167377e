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
from harness.results.publish import publish
from harness.results.records import Unusable
from harness.results.rows import Row, versus_leader
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
    (None: no succeeded run), its Dice, ±, n, the verdict against the best and, tuned, the
    values chosen; and the records each row was made from."""
    ranked = sorted((r for _, _, r in table_rows if r is not None), key=lambda r: -r.mean)
    out = []
    for value, key, row in table_rows:
        if row is None:
            out.append({"value": value, "key": key, "n": 0, "runs": []})
            continue
        best = ranked[0]
        mark = verdict(None if row is best else versus_leader(best, row), BEST)
        out.append(
            {
                "value": value,
                "key": key,
                "entry": row.entry.label,
                "mean_dice": row.mean,
                "std": row.std,
                "n": len(row.records),
                "vs_best": mark,
                "chosen": {k: v for k, v in row.entry.hparams},
                "seeds": [r.seed for r in row.records],
                "dice_by_seed": {str(s): d for s, d in row.by_seed().items()},
                "runs": sorted((runs_of or {}).get(id(r), "") for r in row.records),
            }
        )
    return {
        "kind": "ablation",
        "benchmark_id": benchmark_id,
        "axis": axis,
        "budget": budget,
        "excluded": [{"path": visible(u.path.as_posix()), "reason": u.reason} for u in excluded],
        "rows": out,
    }


def write_ablation_table(
    path: Path,
    data: Mapping[str, Any],
    runs_dir: Path,
    say: Say | None = None,
) -> Path | None:
    """Publish an ablation table (``harness.results.publish``): its twin, markdown and page,
    where no run is lost; return the path written (None: the table there was kept and none
    could be written)."""
    return publish(path, lambda: data, runs_dir, say)
