"""Comparing two leaderboard tables: align rows by entry, show deltas, flag noise.

Reads the markdown this project writes (``harness.results.leaderboard``), so a plugin author can
compare a table from their branch with the published one, in CI with ``--fail-below``.
A difference is within noise when it is smaller than 1.96 standard errors of the
difference, each row's standard error being its ± over sqrt(n) (std over seeds) or its
± itself (ᵇ: already a bootstrap standard error over images).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

Z95 = 1.96


@dataclass(frozen=True)
class TableRow:
    """The numbers of one leaderboard row that a comparison needs."""

    entry: str
    mean: float
    noise: float | None
    noise_is_se: bool
    n: int
    params_m: float | None
    images_per_s: float | None
    peak_mb: float | None

    @property
    def se(self) -> float | None:
        if self.noise is None:
            return None
        return self.noise if self.noise_is_se else self.noise / math.sqrt(max(self.n, 1))


@dataclass(frozen=True)
class Delta:
    """Row ``entry`` in both tables: B minus A, and whether that is within noise."""

    entry: str
    a: TableRow
    b: TableRow

    @property
    def dice(self) -> float:
        return self.b.mean - self.a.mean

    @property
    def within_noise(self) -> bool | None:
        if self.a.se is None or self.b.se is None:
            return None
        return abs(self.dice) <= Z95 * math.hypot(self.a.se, self.b.se)

    def cost(self, field: str) -> float | None:
        x, y = getattr(self.a, field), getattr(self.b, field)
        return None if x is None or y is None else y - x


@dataclass(frozen=True)
class Comparison:
    deltas: list[Delta]
    only_a: list[str]
    only_b: list[str]

    def drops_below(self, threshold: float) -> list[Delta]:
        """Shared rows whose Dice fell by more than ``threshold``."""
        return [d for d in self.deltas if d.dice < -threshold]


def _number(cell: str) -> float | None:
    cell = cell.strip().rstrip("ᵇ")
    try:
        return float(cell)
    except ValueError:
        return None


def parse_table(path: Path) -> dict[str, TableRow]:
    """The ranked rows of a leaderboard file, by entry label."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read ({exc.strerror})") from None
    header_at = next((i for i, line in enumerate(lines) if line.startswith("| # | Entry |")), None)
    if header_at is None:
        raise HarnessError(
            f"{path}: no leaderboard table found (a `| # | Entry | ...` header); "
            "pass a file written by `harness leaderboard`"
        )
    header = [c.strip() for c in lines[header_at].strip().strip("|").split("|")]
    needed = ("Entry", "Mean Dice", "±", "n")
    if any(name not in header for name in needed):
        raise HarnessError(f"{path}: the table lacks one of the columns {', '.join(needed)}")
    col = {name: i for i, name in enumerate(header)}
    rows: dict[str, TableRow] = {}
    for number, line in enumerate(lines[header_at + 2 :], header_at + 3):
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != len(header) or cells[0] == "—":
            continue
        mean = _number(cells[col["Mean Dice"]])
        if mean is None:
            raise HarnessError(
                f"{path}:{number}: Mean Dice {cells[col['Mean Dice']]!r} is not a number"
            )

        def get(name: str, cells: list[str] = cells) -> float | None:
            return _number(cells[col[name]]) if name in col else None

        rows[cells[col["Entry"]]] = TableRow(
            entry=cells[col["Entry"]],
            mean=mean,
            noise=get("±"),
            noise_is_se=cells[col["±"]].endswith("ᵇ"),
            n=int(get("n") or 1),
            params_m=get("Params (M)"),
            images_per_s=get("Train img/s"),
            peak_mb=get("Peak mem (MB)"),
        )
    return rows


def compare(a: Path, b: Path) -> Comparison:
    """Rows of ``b`` against rows of ``a`` with the same entry; rows in one table only listed."""
    rows_a, rows_b = parse_table(a), parse_table(b)
    shared = [k for k in rows_a if k in rows_b]
    return Comparison(
        deltas=[Delta(k, rows_a[k], rows_b[k]) for k in shared],
        only_a=[k for k in rows_a if k not in rows_b],
        only_b=[k for k in rows_b if k not in rows_a],
    )
