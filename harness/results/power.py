"""``harness power TABLE --detect DELTA``: how many seeds a row (a fold, cross-validated) would
let the table resolve a difference of DELTA in mean Dice at its own noise, without training.

The answer comes from the table's JSON twin alone: the twin keeps the table's fitted noise
model (``harness.results.judging``), and ``harness.results.noise.seeds_needed`` projects it to
more seeds at the fitted variances. What cannot be answered is a ``HarnessError`` of one line:
a difference that is not a positive number, a file that is no table's twin, a table with no
noise model (one row; records without per-image Dice), a table of one seed a row (its seed
noise is not measured apart). A difference no number of seeds up to the cap resolves is an
answer, and says what the cap resolves and, where more seeds cannot help, that more validation
images would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError, visible
from harness.results.tables import load_twin, twin_path

if TYPE_CHECKING:  # the statistics (scipy) load only once the difference asked is one
    from harness.results.noise import NoiseModel


@dataclass(frozen=True)
class Plan:
    """What the table at ``table`` would need to resolve ``delta``: ``seeds`` a row (a fold;
    None: not within the cap, ``why`` says what the cap resolves), with what it has now
    (``units`` seeds a row or fold, at most; ``folds``) and resolves now (``resolves``)."""

    table: Path
    delta: float
    resolves: float
    units: int
    folds: int
    seeds: int | None
    why: str | None = None

    def _design(self, seeds: int) -> str:
        runs = f"{seeds} seed{'s' if seeds != 1 else ''}"
        return f"{self.folds} folds × {runs} a row" if self.folds > 1 else f"{runs} a row"

    def line(self) -> str:
        from harness.results.noise import ALPHA, POWER

        """The answer, in one line."""
        now = f"it has {self._design(self.units)} and resolves {self.resolves:.4f} now"
        if self.seeds is None:
            return f"{visible(self.table)}: {self.why}; {now}"
        return (
            f"{visible(self.table)}: {self._design(self.seeds)} would resolve {self.delta:.4f} in "
            f"mean Dice at this noise ({POWER * 100:.0f} % power, α = {ALPHA} after the "
            f"correction); {now}"
        )


def power(table: Path, delta: float) -> Plan:
    """How many seeds would let the table at ``table`` (its ``.md`` or its ``.json`` twin)
    resolve ``delta``; a ``HarnessError`` naming the file when that cannot be said."""
    if isinstance(delta, bool) or not math.isfinite(delta) or delta <= 0:
        raise HarnessError(
            f"--detect must be a positive difference in mean Dice (e.g. 0.005), not {delta:g}"
        )
    if delta >= 1:
        raise HarnessError(f"--detect {delta:g}: a difference in mean Dice is below 1")
    from harness.results.noise import NotResolvable, minimum_detectable_difference, seeds_needed

    path = Path(table)
    model = _model(path, _twin(path))
    counts = [c for row in model.layout.counts for c in row]
    try:
        resolves = minimum_detectable_difference(model)
        seeds, why = seeds_needed(model, delta), None
    except NotResolvable as exc:
        seeds, why = None, str(exc)
    except (ValueError, ArithmeticError) as exc:
        raise HarnessError(f"{visible(path)}: {exc}") from None
    return Plan(path, delta, resolves, max(counts), model.layout.folds, seeds, why)


def _twin(path: Path) -> dict[str, Any]:
    """The table's twin: ``path`` itself, or the one beside a markdown table."""
    if path.is_dir():
        raise HarnessError(f"{visible(path)}: is a folder; pass a table's .md or .json file")
    if path.suffix == ".json":
        return load_twin(path)
    twin = twin_path(path)
    if not twin.is_file():
        raise HarnessError(
            f"{visible(path)}: no table's JSON twin beside it ({visible(twin.name)}); pass a "
            "table written by `harness leaderboard`, `sweep` or `tune` (its .md or .json)"
        )
    return load_twin(twin)


def _model(path: Path, twin: dict[str, Any]) -> NoiseModel:
    """The noise model the twin keeps, or one line saying why it cannot plan seeds."""
    from harness.results.judging import IMAGES, model_of

    summary = twin.get("noise")
    if summary is None:
        raise HarnessError(
            f"{visible(path)}: a table made before noise models; regenerate it with "
            "`harness leaderboard`"
        )
    if not summary.get("basis"):
        raise HarnessError(
            f"{visible(path)}: no noise model ({visible(summary.get('problem') or 'none')}), "
            "so no seed count can be planned"
        )
    if summary["basis"] != IMAGES:
        raise HarnessError(
            f"{visible(path)}: its records have no per-image Dice, so its noise model rests on "
            "the runs' mean Dice alone and cannot plan seeds; rerun the entries with this "
            "harness (records keep per-image Dice) and regenerate the table"
        )
    try:
        return model_of(summary)
    except (ValueError, ArithmeticError) as exc:
        raise HarnessError(
            f"{visible(path)}: noise: {exc}; regenerate it with `harness leaderboard`"
        ) from None
