"""The spread of training throughput across the committed records, per identical configuration,
before and after the quiet pass (``harness cost``): the table in docs/scaling.md.

    python scripts/throughput_spread.py          # rewrite the table in docs/scaling.md
    python scripts/throughput_spread.py --check  # exit 1 when it differs from the records
    python scripts/throughput_spread.py --print  # print the table

An identical configuration is one model (with its parameters) and encoder at one resolution,
batch size, number of CPU threads and precision; its records may differ in loss, optimizer,
schedule, seed and benchmark. *Before* is each record's whole-run figure
(``cost.train_images_per_s``: images over the time spent in training steps, as every table
showed it until runs timed a window); *after* is the figure the tables show now
(``harness.results.speed.train_figure``) where it compares (a quiet pass's, or a run's own
uncontended window); the records whose figure does not (marked ``ᶜ`` or ``ʷ``) are counted
apart. Spread: the largest distance of the minimum or maximum from the median, in per cent.
The table sits between ``<!-- throughput-spread -->`` and ``<!-- /throughput-spread -->``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from harness.results import speed
from harness.results.records import Record, iter_records

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "leaderboards" / "records"
DOC = ROOT / "docs" / "scaling.md"
START, END = "<!-- throughput-spread -->", "<!-- /throughput-spread -->"


def configuration(record: Record) -> tuple[str, str, int, int, int, str]:
    """Model (and its parameters), encoder, resolution, batch size, CPU threads, precision."""
    fields = record.benchmark["protocol"]["fields"]
    model = record.entry["model"]
    params = ",".join(f"{k}={v}" for k, v in sorted((model.get("params") or {}).items()))
    threads = record.hardware.get("cpu", {}).get("threads")
    if not isinstance(threads, int):
        found = re.match(r"cpu \((\d+) threads?\)", str(record.cost.get("device", "")))
        threads = int(found.group(1)) if found else 0
    return (
        model["name"] + (f":{params}" if params else ""),
        str(record.entry.get("encoder") or fields.get("encoder")),
        int(fields.get("resolution", 0)),
        int(fields.get("batch_size", 0)),
        threads,
        str(record.cost.get("precision") or "fp32"),
    )


def _spread(values: Sequence[float]) -> str:
    """``min / median / max (±N %)``; ``—`` for none."""
    if not values:
        return "—"
    low, mid, high = min(values), statistics.median(values), max(values)
    spread = max(1 - low / mid, high / mid - 1) * 100
    return f"{low:.1f} / {mid:.1f} / {high:.1f} (±{spread:.0f} %)"


def table(records: Sequence[Record]) -> str:
    """The markdown table of every configuration with a succeeded record."""
    groups: dict[tuple, list[Record]] = defaultdict(list)
    for record in records:
        if record.status == "succeeded":
            groups[configuration(record)].append(record)
    lines = [
        "| model | encoder | px | batch | threads | records | before: min / median / max "
        "(spread) | after: min / median / max (spread) | after: not comparable |",
        "|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    for key in sorted(groups):
        found = groups[key]
        before = [
            float(r.cost["train_images_per_s"]) for r in found if r.cost.get("train_images_per_s")
        ]
        figures = [speed.train_figure(r) for r in found]
        after = [f.value for f in figures if f is not None and f.comparable]
        marked = [f for f in figures if f is not None and not f.comparable]
        kinds = ", ".join(f"{n} {mark}" for mark, n in sorted(_marks(marked).items()))
        model, encoder, px, batch, threads, _ = key
        lines.append(
            f"| {model} | {encoder} | {px} | {batch} | {threads} | {len(found)} | "
            f"{_spread(before)} | {_spread(after)} | {kinds or '—'} |"
        )
    return "\n".join(lines)


def _marks(figures: Sequence[speed.Figure]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for figure in figures:
        counts[figure.mark] += 1
    return counts


def rewrite(text: str, made: str) -> str:
    """``text`` with the table between the markers replaced by ``made``."""
    pattern = re.compile(re.escape(START) + r"\n(?:.*?\n)?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{DOC}: no {START} ... {END} block")
    return pattern.sub(lambda _: f"{START}\n{made}\n{END}", text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--print", action="store_true", dest="show")
    args = parser.parse_args(argv)
    made = table([r for _, r in iter_records(RECORDS)])
    if args.show:
        print(made)
        return 0
    text = DOC.read_text(encoding="utf-8")
    new = rewrite(text, made)
    if args.check:
        return 0 if new == text else 1
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
