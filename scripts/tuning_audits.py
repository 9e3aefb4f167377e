"""The audits of successive halving that docs/tuning.md shows: copy them out of a runs folder,
check that their figures follow from their Dice, and write their table into docs/tuning.md.

    python scripts/tuning_audits.py collect RUNS_DIR   # copy every audit.json/.png into docs/audits
    python scripts/tuning_audits.py                    # rewrite the table in docs/tuning.md
    python scripts/tuning_audits.py --check            # exit 1 when docs/tuning.md differs

Each audit (``harness tune … --schedule halving --audit``, written beside its study as
``audit.json`` and ``audit.png``) is committed as ``docs/audits/<entry>-eta<E>-from<M>.json``
and ``.png``. Its statistics are recomputed here from its configurations' Dice
(``harness.studies.audit.audit``), so a committed figure cannot drift from the scores it was
made from; the table sits between ``<!-- tuning-audits -->`` and ``<!-- /tuning-audits -->``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.studies import audit as audits
from harness.studies.halving import Rung

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "tuning.md"
FOLDER = ROOT / "docs" / "audits"
BLOCK = re.compile(r"(<!-- tuning-audits -->\n)(.*?)(<!-- /tuning-audits -->)", re.DOTALL)


def name(report: Mapping[str, Any]) -> str:
    """``<entry>-eta<E>-from<M>``: the entry's components and the schedule."""
    entry = "-".join(part.strip() for part in str(report["entry"]).split("·"))
    rungs = report["schedule"]
    eta = rungs[1]["epochs"] // rungs[0]["epochs"] if len(rungs) > 1 else 1
    return f"{entry}-eta{eta}-from{rungs[0]['epochs']}"


def collect(runs_dir: Path, folder: Path = FOLDER) -> list[Path]:
    """Copy every audit under ``runs_dir`` (and its picture) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for found in sorted(runs_dir.glob(f"*/tuning/*/{audits.AUDIT_JSON}")):
        stem = name(json.loads(found.read_text(encoding="utf-8")))
        shutil.copyfile(found, folder / f"{stem}.json")
        shutil.copyfile(found.with_name(audits.AUDIT_PNG), folder / f"{stem}.png")
        copied.append(folder / f"{stem}.json")
    return copied


def recomputed(report: Mapping[str, Any]) -> dict[str, Any]:
    """The audit of ``report``'s configurations, made again from their Dice alone."""
    depth = len(report["rungs"])
    schedule = [
        Rung(i, r["configs"], r["epochs"]) for i, r in enumerate(report["schedule"][:depth])
    ]
    index = {str(r.epochs): r.index for r in schedule}
    scores = [
        audits.Scores(
            number=c["number"],
            values=c["values"],
            rungs={index[e]: d for e, d in c["rungs"].items()},
            full=c["full_dice"],
        )
        for c in report["configs"]
    ]
    return audits.audit(scores, schedule, report["bootstrap"]["seed"])


def load(folder: Path = FOLDER) -> list[tuple[str, dict[str, Any]]]:
    """Every committed audit by name, each checked against its recomputation."""
    found = []
    for path in sorted(folder.glob("*.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        again = recomputed(report)
        differs = [k for k, v in again.items() if report.get(k) != v]
        if differs:
            raise SystemExit(f"{path}: {', '.join(differs)} do not follow from its Dice")
        found.append((path.stem, report))
    return found


def _interval(value: float | None, low_high: Sequence[float] | None) -> str:
    """``value`` and its interval, at 2 decimals (— where there is none)."""
    if value is None:
        return "—"
    return f"{value:.2f}" + (f" [{low_high[0]:.2f}, {low_high[1]:.2f}]" if low_high else "")


def table(found: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """The audits as markdown, a row each, then what the rule says of each schedule."""
    rows = [
        "| Entry | schedule | trial-epochs | rung 1: τ [95 % CI] | regret, Dice [95 % CI] "
        "| halving chose (full Dice) | best (full Dice) | rule | audit |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for stem, r in sorted(found, key=lambda f: (f[1]["entry"], _trial_epochs(f[1]))):
        rungs = ", ".join(f"{s['configs']}×{s['epochs']}" for s in r["schedule"])
        first = r["rungs"][0]
        low, high = r["regret_interval"] or (None, None)
        regret = f"{r['regret']:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None else "")
        rule = "keep halving" if r["rule"]["keep_halving"] else "fall back"
        entry = str(r["entry"]).split(" · ")[2]
        tau = _interval(first["kendall_tau"], first["interval"])
        rows.append(
            f"| {entry} | {rungs} | {_trial_epochs(r)} | {tau} "
            f"| {regret} | #{r['chosen']['number']} ({r['chosen']['full_dice']:.3f}) "
            f"| #{r['best']['number']} ({r['best']['full_dice']:.3f}) | {rule} "
            f"| [json](audits/{stem}.json), [picture](audits/{stem}.png) |"
        )
    return [*rows, ""]


def _trial_epochs(report: Mapping[str, Any]) -> int:
    """The epochs a schedule's trials train, all rungs together."""
    return sum(r["configs"] * r["epochs"] for r in report["schedule"])


def rewrite(text: str, lines: list[str]) -> str:
    """``text`` with its audits block replaced by ``lines``."""
    if not BLOCK.search(text):
        raise SystemExit(f"{DOC}: no <!-- tuning-audits --> block")
    return BLOCK.sub(lambda m: m.group(1) + "\n".join(lines) + "\n" + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["collect"], help="copy audits in")
    parser.add_argument("runs_dir", nargs="?", type=Path, help="the runs folder (collect)")
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/tuning.md differs")
    args = parser.parse_args(argv)
    if args.command == "collect":
        if args.runs_dir is None:
            parser.error("collect needs RUNS_DIR")
        for path in collect(args.runs_dir):
            print(f"copied {path}")
    text = DOC.read_text(encoding="utf-8")
    made = rewrite(text, table(load()))
    if args.check:
        if made != text:
            print(f"{DOC} differs from the audits; run python scripts/tuning_audits.py")
            return 1
        return 0
    DOC.write_text(made, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
