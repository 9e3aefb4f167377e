"""Where a new row would stand in a published table: its rank and its verdict against the
leader, had its records been among the published ones (``harness run`` says it in one line).

The published table is rebuilt in memory from its records (``<folder>/records``) with the new
row's records, through the same ``table_data`` every leaderboard is made by, so the rank and
the verdict follow the table's own rules; nothing is written. A published row of the same
entry is set aside: the new row stands in its place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.results.leaderboard import leaderboard_path, table_data
from harness.results.records import Record, scan_records
from harness.results.rows import rows
from harness.results.significance import standing_text
from harness.results.tables import read_twin

#: Where a checkout's published tables and their records are.
PUBLISHED = Path("leaderboards")


@dataclass(frozen=True)
class Standing:
    """The new row's place in the published ``table``: ``rank`` of ``total`` rows, and its
    verdict against the leader (a word of ``significance.verdict``)."""

    table: Path
    rank: int
    total: int
    verdict: str
    #: Whether the table had a row of the same entry, set aside for the new one.
    replaces: bool = False

    def line(self) -> str:
        instead = " (in place of its published row)" if self.replaces else ""
        return (
            f"would rank {self.rank} of {self.total} in {self.table}{instead}; "
            f"{standing_text(self.verdict)}"
        )


def standing(published: Path, mine: Sequence[Record]) -> Standing | None:
    """Where the row of ``mine`` (one entry's records; the succeeded ones count) would stand in
    the published table of its benchmark in ``published``; None when there is no such table
    with records (the caller leaves out records that are among the published ones)."""
    done = [r for r in mine if r.status == "succeeded"]
    if not done:
        return None
    bench = done[0].benchmark_id
    table = leaderboard_path(published, bench)
    if read_twin(table) is None or not (published / "records").is_dir():
        return None
    found, _ = scan_records(published / "records")
    theirs = [r for _, r in found if r.benchmark_id == bench]
    ours = rows(done, bench)
    if not theirs or not ours:
        return None
    key = ours[0].entry.key
    others = [r for r in rows(theirs, bench) if r.entry.key != key]
    records = [r for row in others for r in row.records] + list(ours[0].records)
    data = table_data(done[0].benchmark, rows(records, bench))
    label = ours[0].entry.label
    row = next(r for r in data["rows"] if r["entry"] == label)
    replaces = len(others) < len(rows(theirs, bench))
    return Standing(table, int(row["rank"]), len(data["rows"]), str(row["vs_leader"]), replaces)
