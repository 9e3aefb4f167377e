"""A table's rows judged by the noise rules of ``harness.results.noise``: each row's units read
from its records, the table's noise model fitted, and each row's interval, rank band and
verdict against the leader; and what a table's JSON twin keeps of the model (``summary``), so
that ``harness power`` and ``harness compare`` rebuild it from the twin alone (``model_of``).

A unit's scores are its record's per-image Dice: ``per_image_dice`` holds the 29 per-class
Dice of each validation image and ``val_images`` their names; an image's score is the mean
over its classes, and the images are sorted by name, so that every unit of a fold lists them
in one order. A row is modelled when each of its records has per-image Dice over its fold's
validation images (the names most of the fold's units have) that average to its mean Dice.
With two modelled rows or more, the model is fitted to them (basis ``images``) and any other
row is left unjudged. With fewer, it is fitted to the runs' mean Dice, one score a unit (basis
``seeds``), which leaves out the entry × image noise; and when that cannot be done either (one
row, or one seed a row), the table has no model and ``problem`` says why. Nothing here is
worded: verdicts are worded in ``harness.results.significance``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.results.noise import (
    Interval,
    Layout,
    MeanSquares,
    NoiseModel,
    Unit,
    Verdict,
    fit_noise,
    minimum_detectable_difference,
    rank_bands,
    refit,
    row_intervals,
    verdicts,
)
from harness.results.records import Record
from harness.results.rows import Row
from harness.results.significance import RULE

#: What a model was fitted to: the runs' per-image Dice, or their mean Dice alone.
IMAGES = "images"
SEEDS = "seeds"
#: How far a record's per-image Dice may average from its mean Dice (rounding, not another score).
AGREE = 1e-9
#: The mean squares' coefficients a twin keeps, besides their values and degrees of freedom.
COEFFICIENTS = ("k_unit", "k_entry_image", "k_image", "r_image", "r_fold", "inverse_units")


@dataclass(frozen=True)
class Judgement:
    """One row of a table under the rules: its interval, rank band (1 the best, among the
    modelled rows) and verdict; all None for a row the model does not cover. ``leader``: the
    row every other is tested against (with no model, the row of the best mean)."""

    leader: bool
    interval: Interval | None = None
    band: tuple[int, int] | None = None
    verdict: Verdict | None = None

    @property
    def below(self) -> bool | None:
        """Whether the row is surely not a best entry (None: not tested)."""
        return None if self.verdict is None else self.verdict.below

    def data(self) -> dict[str, Any]:
        """The judgement as a twin's row holds it: ``interval`` (95 %, of the row's true mean
        Dice), ``rank_band`` and ``test`` (the rule, the adjusted p, the probability that the
        row beats the leader, its gap to it), each None where the model does not cover the row
        (and ``test`` for the leader)."""
        v, interval = self.verdict, self.interval
        test = None
        if v is not None and not v.leader:
            test = {
                "method": RULE,
                "p_value": _finite(v.p_value),
                "beats_leader": _finite(v.beats_leader),
                "gap": _finite(v.gap),
            }
        return {
            "interval": None if interval is None else [interval.low, interval.high],
            "rank_band": None if self.band is None else list(self.band),
            "test": test,
        }


@dataclass(frozen=True)
class TableNoise:
    """A table's noise: its model (None: none could be fitted, ``problem`` says why), what it
    was fitted to (``basis``), the table rows it covers (``rows``, in the model's order), each
    row's judgement, and the smallest difference the table resolves (``mdd``)."""

    model: NoiseModel | None
    basis: str | None
    rows: tuple[int, ...]
    judged: tuple[Judgement, ...]
    mdd: float | None = None
    problem: str | None = None

    @property
    def unmodelled(self) -> list[int]:
        """The table rows a model leaves out (every row when there is none)."""
        return [i for i in range(len(self.judged)) if i not in self.rows]

    def summary(self) -> dict[str, Any]:
        """What a twin keeps of the model: enough to rebuild it (``model_of``), and the figures
        a table's header states."""
        model = self.model
        if model is None:
            return {"basis": None, "rows": [], "problem": self.problem}
        ms = model.mean_squares
        return {
            "basis": self.basis,
            "rows": list(self.rows),
            "reference": self.rows[model.leader],  # the leader every row is tested against
            "means": [float(m) for m in model.means],
            "layout": {"counts": [list(c) for c in model.layout.counts],
                       "images": list(model.layout.images)},
            "mean_squares": {
                "value": [float(v) for v in ms.value],
                "df": [float(d) for d in ms.df],
                **{name: float(getattr(ms, name)) for name in COEFFICIENTS},
            },
            "heterogeneity": _finite(model.heterogeneity),
            "df": _finite(model.df),
            "images_only": model.images_only,
            "replicated": model.replicated,
            "mdd": _finite(self.mdd),
            "problem": self.problem,
        }  # fmt: skip


def judge(table_rows: Sequence[Row]) -> TableNoise:
    """The rows of a table (in its order) under the rules: fitted to their per-image Dice where
    two rows or more have them, else to their runs' mean Dice, else not at all."""
    per_image = _image_units(table_rows)
    covered = tuple(i for i, units in enumerate(per_image) if units is not None)
    problem = None
    if len(covered) >= 2:
        try:
            return _judged(table_rows, fit_noise([per_image[i] for i in covered]), IMAGES, covered)
        except ValueError as exc:
            problem = str(exc)
    everyone = tuple(range(len(table_rows)))
    try:
        model = fit_noise([_seed_units(row) for row in table_rows])
    except ValueError as exc:
        return _unjudged(table_rows, problem or str(exc))
    return _judged(table_rows, model, SEEDS, everyone, problem)


def judge_units(units: Sequence[Sequence[Unit]], means: Sequence[float]) -> TableNoise:
    """Rows given by their units of per-image Dice, in table order (``harness select``'s
    configurations, scored from kept predictions: no records of their own), under the same
    rules; ``means``: the rows' mean Dice, which name the leader when no model can be fitted."""
    try:
        model = fit_noise([list(row) for row in units])
    except ValueError as exc:
        best = max(range(len(means)), key=lambda i: (means[i], -i), default=-1)
        judged = tuple(Judgement(i == best) for i in range(len(means)))
        return TableNoise(None, None, (), judged, problem=str(exc))
    return _judged(units, model, IMAGES, tuple(range(len(units))))


def _judged(
    table_rows: Sequence[Row] | Sequence[Sequence[Unit]],
    model: NoiseModel,
    basis: str,
    covered: tuple[int, ...],
    problem: str | None = None,
) -> TableNoise:
    intervals, bands, judged = row_intervals(model), rank_bands(model), verdicts(model)
    by_row = {
        row: Judgement(judged[k].leader, intervals[k], bands[k], judged[k])
        for k, row in enumerate(covered)
    }
    rows = tuple(by_row.get(i, Judgement(False)) for i in range(len(table_rows)))
    mdd = minimum_detectable_difference(model)
    return TableNoise(model, basis, covered, rows, mdd, problem)


def _unjudged(table_rows: Sequence[Row], problem: str) -> TableNoise:
    """No model: the row of the best mean is still the one the others would be tested against."""
    best = max(range(len(table_rows)), key=lambda i: (table_rows[i].mean, -i), default=-1)
    judged = tuple(Judgement(i == best) for i in range(len(table_rows)))
    return TableNoise(None, None, (), judged, problem=problem)


# A row's units.


def _scores(record: Record) -> tuple[tuple[str, ...], np.ndarray] | None:
    """A record's per-image Dice (each image's mean over its classes), sorted by image name,
    with the names; None when it has none, they do not match its image names, or they do not
    average to its mean Dice (they would not be the scores its row is ranked by)."""
    names, scores = record.val_images, record.per_image_dice
    if not scores or len(names) != len(scores) or len(set(names)) != len(names):
        return None
    order = sorted(range(len(names)), key=names.__getitem__)
    dice = np.array([np.mean(np.asarray(scores[i], dtype=float)) for i in order])
    if record.mean_dice is None or abs(float(dice.mean()) - record.mean_dice) > AGREE:
        return None
    return tuple(names[i] for i in order), dice


def _image_units(table_rows: Sequence[Row]) -> list[list[Unit] | None]:
    """Each row's units of per-image Dice, None for a row that cannot be modelled on them: a
    record without per-image Dice, or with other images than most of its fold's units."""
    found = [[(r.fold, _scores(r)) for r in row.records] for row in table_rows]
    names = Counter((fold, s[0]) for units in found for fold, s in units if s is not None)
    common: dict[int | None, tuple[str, ...]] = {}
    for fold, images in sorted(names, key=lambda k: (-names[k], str(k))):  # the most, first
        common.setdefault(fold, images)
    out: list[list[Unit] | None] = []
    for units in found:
        usable = all(s is not None and s[0] == common.get(fold) for fold, s in units)
        out.append([Unit(s[1], fold) for fold, s in units if s is not None] if usable else None)
    return out


def _seed_units(row: Row) -> list[Unit]:
    """A row's units scored by their runs' mean Dice alone (one score a unit)."""
    return [
        Unit(np.array([float(r.mean_dice)]), r.fold) for r in row.records if r.mean_dice is not None
    ]


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


# The model back from a twin.


def model_of(summary: Mapping[str, Any]) -> NoiseModel:
    """The model a twin's ``noise`` keeps (``TableNoise.summary``), rebuilt; ValueError when it
    keeps none, or what it keeps is not a model's."""
    if not summary.get("basis"):
        raise ValueError(summary.get("problem") or "the table has no noise model")
    layout = summary["layout"]
    ms = summary["mean_squares"]
    squares = MeanSquares(
        np.asarray(ms["value"], dtype=float),
        np.asarray(ms["df"], dtype=float),
        **{name: float(ms[name]) for name in COEFFICIENTS},
    )
    counts = tuple(tuple(int(c) for c in row) for row in layout["counts"])
    shape = Layout(counts, tuple(int(i) for i in layout["images"]))
    if len(summary["rows"]) != shape.rows:
        raise ValueError("the model's rows do not match its layout")
    return refit(summary["means"], squares, shape, summary.get("heterogeneity"))
