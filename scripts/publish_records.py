"""Copy the records of a runs folder into ``leaderboards/records`` (the runs/ layout: record.json
files, and each benchmark's ablation designs), so that every committed table ships with the
evidence it was made from.

    python scripts/publish_records.py RUNS_DIR [--to leaderboards/records] [--benchmark ID]...

Only records that a table can use, or that say a run failed, are copied (a damaged file is
named and left behind); weights, checkpoints and pictures stay in the runs folder. Then
``harness leaderboard --runs-dir leaderboards/records --leaderboards-dir leaderboards``
regenerates the committed tables, and
``tests/test_published_tables.py`` checks that it does so byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.atomic import atomic_write_bytes
from harness.results.designs import FOLDER
from harness.results.records import RECORD_NAME, scan_records


def publish(runs: Path, to: Path, benchmarks: list[str]) -> tuple[int, int]:
    """Copy each usable record of ``benchmarks`` (all when empty); return (copied, unchanged)."""
    found, unusable = scan_records(runs)
    for u in unusable:
        print(f"skipped {u}", file=sys.stderr)
    copied = unchanged = 0
    for path, record in found:
        if benchmarks and record.benchmark_id not in benchmarks:
            continue
        target = to / path.relative_to(runs)
        data = path.read_bytes()
        if target.is_file() and target.read_bytes() == data:
            unchanged += 1
            continue
        atomic_write_bytes(target, data)
        copied += 1
    for design in sorted(runs.glob(f"*/{FOLDER}/*.json")):  # the ablation tables' designs
        if benchmarks and design.parent.parent.name not in benchmarks:
            continue
        atomic_write_bytes(to / design.relative_to(runs), design.read_bytes())
    return copied, unchanged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="the runs folder the tables were made from")
    parser.add_argument("--to", type=Path, default=Path("leaderboards/records"))
    parser.add_argument("--benchmark", action="append", default=[], help="only this benchmark")
    args = parser.parse_args()
    if not args.runs.is_dir():
        print(f"publish_records: error: {args.runs}: no such folder", file=sys.stderr)
        return 2
    copied, unchanged = publish(args.runs, args.to, args.benchmark)
    print(
        f"{copied} records copied to {args.to} ({unchanged} already there); file name {RECORD_NAME}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
