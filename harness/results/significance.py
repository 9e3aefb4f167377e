"""Is a difference real, or within noise? The words of every verdict, and what a table says of
the rule that gave them: the rules themselves are ``harness.results.noise``'s (its method and
calibration: docs/verdicts.md), applied to a table by ``harness.results.judging``.

Within a table (a leaderboard's ``vs #1``, an ablation's ``vs best``): a step-down max-t test
(Westfall and Young) of "this row is a best entry" over every row at once, its null drawn from
a noise model fitted to the table's runs: ``below`` when rejected (family-wise error at most
5 %, the leader's selection included), ``≈`` when not, ``?`` for a row the model does not
cover. Between two tables (``harness compare``): each shared entry's difference with both rows'
whole noise, simultaneous intervals over the entries compared (max-|t|): ``real`` when the
interval excludes 0, ``within noise`` when not, ``noise unknown`` when a table has no model of
the row.

A verdict is worded here and nowhere else (``verdict``, ``difference_verdict``, and the notes
that explain them): a leaderboard, an ablation, their pages and ``harness compare`` show these
words. The ± a twin keeps for a row of one seed is a bootstrap standard error over its images
(``bootstrap_se``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

ALPHA = 0.05
N_RESAMPLES = 2000
#: The rule of every verdict within a table, as its header and drill-downs name it.
RULE = "step-down max-t (Westfall–Young)"
#: The rule between two tables.
DIFFERENCE_RULE = "simultaneous max-|t| intervals"

#: The verdict of the row every other is tested against: a leaderboard's #1 ...
LEADER = "leader"
#: ... and an ablation's best value.
BEST = "best"
#: A row that is surely not a best entry, and one that is not resolved from the leader.
BELOW = "below"
WITHIN = "≈"
#: A row the noise model does not cover: no claim.
UNKNOWN = "?"


def verdict(leader: bool, below: bool | None, reference: str = LEADER) -> str:
    """A row's verdict against the reference row (``LEADER`` or ``BEST``): the reference's own
    word for it (``leader``), ``below`` it, ``≈`` (not resolved from it), or ``?`` when the row
    was not tested (``below`` None: the model does not cover it)."""
    if leader:
        return reference
    if below is None:
        return UNKNOWN
    return BELOW if below else WITHIN


def standing_text(word: str) -> str:
    """A row's verdict against the leader of a table it is not in yet, as a clause: ``within
    noise of #1``, ``below #1 beyond noise``, ``would lead it``, ``no test against #1``."""
    return {
        LEADER: "would lead it",
        WITHIN: "within noise of #1",
        BELOW: "below #1 beyond noise",
    }.get(word, "no test against #1 (the table's noise model does not cover the row)")


def difference_verdict(real: bool | None) -> str:
    """The same entry's rows in two tables, in words: ``real`` (the simultaneous interval of
    the difference excludes 0), ``within noise``, or ``noise unknown`` (a table has no noise
    model of the row)."""
    return {True: "real", False: "within noise", None: "noise unknown"}[real]


def bootstrap_se(values: Sequence[float]) -> float | None:
    """Standard error of a mean over images, by bootstrap (the ± a twin keeps for one seed)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None
    rng = np.random.default_rng(0)
    means = x[rng.integers(0, x.size, size=(N_RESAMPLES, x.size))].mean(axis=1)
    return float(means.std(ddof=1))


# What a table says of its noise (markdown lines; the page shows the same).

Summary = Mapping[str, Any]


def noise_lines(
    summary: Summary,
    column: str,
    unjudged: Sequence[str],
    cross_validated: bool,
    ranked: bool = True,
) -> list[str]:
    """A table's notes on its verdicts (``column``: ``vs #1`` or ``vs best``), intervals, rank
    bands (``ranked``: the table shows them) and resolution, from its twin's ``noise``
    (``judging.TableNoise.summary``); ``unjudged`` names the rows its model leaves out."""
    if not summary.get("basis"):
        problem = str(summary.get("problem") or "no rows to compare").rstrip(".")
        return [
            f"- **Noise**: no noise model could be fitted ({problem}), so no row is tested: "
            f"`{column}` is {UNKNOWN} but for the row of the best mean, and `95 % CI` is —.",
            "- **Resolution**: not known without a noise model.",
        ]
    lines = [f"- **Noise**: {_method(summary, column, cross_validated, ranked)}"]
    lines += _caveats(summary, column, unjudged)
    lines.append(f"- **Resolution**: {_resolution(summary)}")
    return lines


def _method(summary: Summary, column: str, cross_validated: bool, ranked: bool) -> str:
    blocks = ", folds as blocks" if cross_validated else ""
    fitted = (
        "the runs' per-image Dice (image, entry × image, seed and seed × image variances, "
        f"pooled over the rows{blocks})"
        if summary["basis"] == "images"
        else f"the runs' mean Dice alone (one score a run{blocks})"
    )
    bands = ""
    if ranked:
        bands = (
            "; `Rank (95 %)`: the ranks it may hold (Mogstad, Romano, Shaikh and Wilhelm's "
            "marginal band)"
        )
    return (
        f'`{column}` is a {RULE} test of "this row is a best entry" over every modelled row, '
        f"its null drawn from a noise model fitted to {fitted}: {BELOW} = surely not a best "
        f"entry (family-wise error at most {ALPHA * 100:.0f} %, the leader's selection "
        f"included), {WITHIN} = not resolved from the leader. `95 % CI`: of the row's true mean "
        f"Dice (t, {_df(summary)} df){bands}. The JSON twin and the page's drill-down give each "
        "row's adjusted p and the chance that it beats the leader. Method: `docs/verdicts.md`."
    )


def _df(summary: Summary) -> str:
    df = summary.get("df")
    return "∞" if df is None else f"{df:.0f}"


def _caveats(summary: Summary, column: str, unjudged: Sequence[str]) -> list[str]:
    lines = []
    if summary.get("images_only"):
        lines.append(
            "- **One seed a row**: the seeds' noise is not measured, only the validation "
            "images': the intervals and verdicts understate the noise (entries that differ by "
            "a seed's luck alone get marked apart); two seeds or more of each entry measure it."
        )
    if summary["basis"] != "images":
        problem = str(summary.get("problem") or "").rstrip(".")
        why = "fewer than two rows have per-image Dice in their records"
        if problem:
            why = f"the per-image Dice give no model ({problem})"
        lines.append(
            f"- **No per-image Dice**: {why}, so the model rests on the runs' mean Dice: the "
            "entry × image noise (which more seeds do not average out) and the draw of the "
            "validation images are not counted, and the intervals and verdicts are too sure."
        )
    if unjudged:
        count = f"{len(unjudged)} row{'s' if len(unjudged) > 1 else ''}"
        lines.append(
            f"- **Not modelled**: {count} without per-image Dice over this table's validation "
            f"images ({', '.join(unjudged)}): {UNKNOWN} in `{column}`, — in `95 % CI`; the "
            "other rows are tested and ranked among themselves."
        )
    return lines


def _resolution(summary: Summary) -> str:
    mdd = summary.get("mdd")
    shown = "unknown" if mdd is None else f"{mdd:.4f}"
    return (
        f"the smallest difference in true mean Dice this table resolves is {shown} (80 % power, "
        f"α = {ALPHA} after the correction, at its own noise); `harness power TABLE --detect D` "
        "gives the seeds that would resolve D."
    )


def difference_method(compared: int) -> str:
    """How ``harness compare`` decides, for its terminal line and its page's notes."""
    entries = f"{compared} entr{'y' if compared == 1 else 'ies'}"
    return (
        "B − A with both tables' whole noise (their noise models: seeds, folds and images, as "
        f"two tables are not paired), {DIFFERENCE_RULE} over the {entries} both model: real = "
        "the 95 % interval excludes 0, within noise = it does not, noise unknown = a table has "
        "no model of the row (made before per-image Dice or JSON twins: regenerate it)."
    )
