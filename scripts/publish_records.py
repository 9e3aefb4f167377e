"""Copy the records of a runs folder into ``leaderboards/records`` (the runs/ layout: record.json
files, and each benchmark's ablation designs), so that every committed table ships with the
evidence it was made from.

    python scripts/publish_records.py RUNS_DIR [--to leaderboards/records] [--benchmark ID]...

Only records that a table can use, or that say a run failed, are copied (a damaged file is
named and left behind), each with the out-of-fold predictions it names
(``predictions.npz``, ``harness run --keep-predictions``: what ``harness select`` scores);
weights, checkpoints and pictures stay in the runs folder. Then
``harness leaderboard --runs-dir leaderboards/records --leaderboards-dir leaderboards``
regenerates the committed tables, and
``tests/test_published_tables.py`` checks that it does so byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.atomic import atomic_write_bytes
from harness.errors import HarnessError
from harness.results.designs import FOLDER
from harness.results.predictions import Kept
from harness.results.records import RECORD_NAME, Record, scan_records


def publish(runs: Path, to: Path, benchmarks: list[str]) -> tuple[int, int]:
    """Copy each usable record of ``benchmarks`` (all when empty), with the predictions it
    keeps; return (copied, unchanged), counting records."""
    found, unusable = scan_records(runs)
    for u in unusable:
        print(f"skipped {u}", file=sys.stderr)
    copied = unchanged = 0
    for path, record in found:
        if benchmarks and record.benchmark_id not in benchmarks:
            continue
        files = {**_predictions(path, record), path: path.read_bytes()}
        changed = False
        for source, data in files.items():  # the predictions before the record naming them
            target = to / source.relative_to(runs)
            if not (target.is_file() and target.read_bytes() == data):
                atomic_write_bytes(target, data)
                changed = True
        copied += changed
        unchanged += not changed
    for design in sorted(runs.glob(f"*/{FOLDER}/*.json")):  # the ablation tables' designs
        if benchmarks and design.parent.parent.name not in benchmarks:
            continue
        atomic_write_bytes(to / design.relative_to(runs), design.read_bytes())
    return copied, unchanged


def _predictions(path: Path, record: Record) -> dict[Path, bytes]:
    """The kept predictions a record names, by path, checked against the record's size and
    SHA-256 (a file that does not match is an error naming it: a record is never published
    without what it names)."""
    if not record.predictions:
        return {}
    kept = Kept.open(path.parent, record.predictions)  # size and SHA-256 checked
    return {kept.path: kept.path.read_bytes()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="the runs folder the tables were made from")
    parser.add_argument("--to", type=Path, default=Path("leaderboards/records"))
    parser.add_argument("--benchmark", action="append", default=[], help="only this benchmark")
    args = parser.parse_args()
    if not args.runs.is_dir():
        print(f"publish_records: error: {args.runs}: no such folder", file=sys.stderr)
        return 2
    try:
        copied, unchanged = publish(args.runs, args.to, args.benchmark)
    except HarnessError as exc:
        print(f"publish_records: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{copied} records copied to {args.to} ({unchanged} already there); file name {RECORD_NAME}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
