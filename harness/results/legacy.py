"""Tables written before JSON twins existed, read from their markdown: the one place in
``harness.results`` that reads a rendered table.

Every table written now has its twin beside it (``harness.results.tables``), and every reader
reads that. A table from before has only its markdown; three readers still accept one, and
each comes here only when the twin is missing: placement (``run_counts``: a table is never
replaced with fewer runs), ``harness compare`` (``leaderboard_rows``, and ``benchmark_of``: the
benchmark its header names) and the row a finished run prints (``row_lines``). Their formats
are frozen: these read what older harnesses wrote.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

#: The header a leaderboard's main table began with.
LEADERBOARD_HEADER = "| # | Entry |"


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def run_counts(markdown: str) -> dict[str, int]:
    """Runs per row: its first table's name column (``Entry``, or an ablation's value) and
    its ``n`` column."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    if not lines:
        return {}
    header = _cells(lines[0])
    if "n" not in header:
        return {}
    n_col = header.index("n")
    name_col = header.index("Entry") if "Entry" in header else 0
    counts: dict[str, int] = {}
    for line in lines[2:]:
        cells = _cells(line)
        if len(cells) != len(header) or not re.fullmatch(r"\d+", cells[n_col]):
            if line.startswith("| Entry |"):
                break  # the per-class table under the main one
            continue
        counts[cells[name_col]] = counts.get(cells[name_col], 0) + int(cells[n_col])
    return counts


def row_lines(markdown: str, label: str) -> str:
    """The main table's header line and the row of entry ``label`` (both empty when none)."""
    lines = markdown.splitlines()
    header = next((line for line in lines if line.startswith(LEADERBOARD_HEADER)), "")
    row = next((line for line in lines if line.startswith("| ") and f"| {label} |" in line), "")
    return f"{header}\n{row}"


_PROTOCOL = re.compile(r"^- \*\*Protocol\*\*: `([^`]*)`, hash `([0-9a-f]+)`(?: — (.*))?$")
_DATASET = re.compile(r"^- \*\*Dataset\*\*: `([^`]*)`, fingerprint `([0-9a-f]+)`")


def benchmark_of(markdown: str) -> dict[str, Any] | None:
    """The benchmark a leaderboard's header names, as a twin holds it (no id; the protocol's
    settings as text; the fingerprint's first 16 digits), or None when it names none."""
    lines = markdown.splitlines()
    protocol = next((m for line in lines if (m := _PROTOCOL.match(line))), None)
    dataset = next((m for line in lines if (m := _DATASET.match(line))), None)
    if protocol is None or dataset is None:
        return None
    settings = [item.partition(" ") for item in (protocol[3] or "").split(", ") if item]
    return {
        "id": None,
        "protocol": {
            "label": protocol[1],
            "hash": protocol[2],
            "fields": {key: value for key, _, value in settings},
        },
        "dataset": {"name": dataset[1], "fingerprint": dataset[2]},
    }


def _number(cell: str) -> float | None:
    cell = cell.strip().rstrip("ᵇᶜʷ")  # a bootstrap ±, a throughput that does not compare
    try:
        return float(cell)
    except ValueError:
        return None


def leaderboard_rows(path: Path) -> list[dict[str, Any]]:
    """The ranked rows of the leaderboard markdown at ``path``, each as a twin's row holds
    them (entry, mean Dice, ±, whether that is a bootstrap s.e., n, parameters, train
    images/s, peak memory); a file with no leaderboard in it is a ``HarnessError``."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read ({exc.strerror})") from None
    at = next((i for i, line in enumerate(lines) if line.startswith(LEADERBOARD_HEADER)), None)
    if at is None:
        raise HarnessError(
            f"{path}: no leaderboard table found (a `| # | Entry | ...` header); "
            "pass a file written by `harness leaderboard`"
        )
    header = _cells(lines[at])
    needed = ("Entry", "Mean Dice", "n")  # ± was in every table before 95 % intervals
    if any(name not in header for name in needed):
        raise HarnessError(f"{path}: the table lacks one of the columns {', '.join(needed)}")
    found = []
    for number, line in enumerate(lines[at + 2 :], at + 3):
        if not line.startswith("|"):
            break
        cells = _cells(line)
        if len(cells) == len(header) and cells[0] != "—":
            found.append(_row(f"{path}:{number}", dict(zip(header, cells, strict=True))))
    return found


def _row(where: str, cells: dict[str, str]) -> dict[str, Any]:
    """One leaderboard row's cells (by header) as its twin's row holds them."""
    mean = _number(cells["Mean Dice"])
    if mean is None:
        raise HarnessError(f"{where}: Mean Dice {cells['Mean Dice']!r} is not a number")

    def get(name: str) -> float | None:
        return _number(cells[name]) if name in cells else None

    return {
        "entry": cells["Entry"],
        "mean_dice": mean,
        "noise": get("±"),
        "noise_is_se": cells.get("±", "").endswith("ᵇ"),
        "n": int(get("n") or 1),
        "params_m": get("Params (M)"),
        "train_images_per_s": get("Train img/s"),
        "peak_memory_mb": get("Peak mem (MB)"),
    }
