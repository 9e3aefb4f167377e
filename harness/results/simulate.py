"""Tables drawn from a noise model: per-image Dice by entry, unit and image, with image,
entry × image, unit and residual effects (and, cross-validated, fold and entry × fold) at
given variances, around given true means (``harness.results.noise`` says what they are).

A ``Simulation`` is fitted to a table (``fitted``) or written down; planted differences are
its means. ``calibrate`` measures how the rules of ``harness.results.noise`` do on such
tables: how often identical entries are marked apart, the power at the stated minimum
detectable difference, and the coverage of intervals and rank bands. The tests call it, and
``docs/verdicts.md`` quotes it. The draws are Gaussian and not clipped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from harness.results.noise import (
    Components,
    Layout,
    NoiseModel,
    expected_noise,
    fit_noise,
    minimum_detectable_difference,
    rank_bands,
    row_intervals,
    verdicts,
)


@dataclass(frozen=True)
class Simulation:
    """What a simulated table is drawn from: the rows' true means, the variances, and a
    balanced design (units a row, or a fold; images a fold; folds)."""

    means: tuple[float, ...]
    components: Components
    units: int = 3
    images: int = 8
    folds: int = 1

    @property
    def layout(self) -> Layout:
        return Layout.balanced(len(self.means), self.units, self.images, self.folds)

    def planted(self, row: int, delta: float) -> Simulation:
        """The same table with row ``row``'s true mean ``delta`` lower."""
        means = list(self.means)
        means[row] -= delta
        return replace(self, means=tuple(means))


def fitted(model: NoiseModel, means: Sequence[float] | None = None) -> Simulation:
    """A simulation of ``model``'s table: its noise, its design (the most units a row has in
    a fold, the most images a fold has), its means unless others are given."""
    units = max(max(row) for row in model.layout.counts)
    return Simulation(
        tuple(float(m) for m in (model.means if means is None else means)),
        model.components,
        units=units,
        images=max(model.layout.images),
        folds=model.layout.folds,
    )


def simulate(spec: Simulation, tables: int = 1, seed: int = 0) -> np.ndarray:
    """``tables`` tables drawn from ``spec``: an array (tables, rows, units, images), or
    cross-validated (tables, rows, folds, units, images)."""
    rng = np.random.default_rng(seed)
    rows, folds, units, images = len(spec.means), spec.folds, spec.units, spec.images
    sd = spec.components.sd()

    def draw(name: str, shape: tuple[int, ...]) -> np.ndarray:
        return rng.normal(0.0, sd[name], (tables, *shape))

    y = np.asarray(spec.means, dtype=float)[None, :, None, None, None]
    y = y + draw("image", (1, folds, 1, images)) + draw("fold", (1, folds, 1, 1))
    y = y + draw("entry_fold", (rows, folds, 1, 1)) + draw("entry_image", (rows, folds, 1, images))
    y = y + draw("unit", (rows, folds, units, 1)) + draw("residual", (rows, folds, units, images))
    return y[:, :, 0] if folds == 1 else y


@dataclass(frozen=True)
class Calibration:
    """How the rules did on simulated tables: the share of tables of identical entries with a
    row marked below (``false_alarms``), the share of tables where an entry planted at the
    stated minimum detectable difference (``mdd``) below the others is marked below
    (``power``), and the shares of rows whose interval covers the true mean and whose rank
    band holds a rank the true means allow (on a table with means ``spaced`` apart), each
    with its standard error over tables (``*_se``: a table's rows share its image effects,
    so its rows' coverages are not independent)."""

    tables: int
    false_alarms: float
    mdd: float
    power: float
    coverage: float
    coverage_se: float
    rank_coverage: float
    rank_coverage_se: float


def calibrate(
    spec: Simulation, tables: int = 400, seed: int = 0, spaced: float = 0.01
) -> Calibration:
    """Measure the rules on ``tables`` tables of ``spec``'s noise and design (its means are
    ignored: identical entries, one planted below, or evenly ``spaced``)."""
    rows = len(spec.means)
    level = replace(spec, means=(0.85,) * rows)
    mdd = minimum_detectable_difference(expected_noise(spec.components, level.layout))
    null = [fit_noise(y) for y in simulate(level, tables, seed)]
    planted = simulate(level.planted(rows - 1, mdd), tables, seed + 1)
    ladder = replace(spec, means=tuple(0.85 - spaced * np.arange(rows)))
    covered = np.array([_covered(m, level.means) for m in null])
    ranked = np.array([_ranks_covered(y, ladder.means) for y in simulate(ladder, tables, seed + 2)])
    return Calibration(
        tables=tables,
        false_alarms=float(np.mean([any(v.below for v in verdicts(m)) for m in null])),
        mdd=mdd,
        power=float(np.mean([verdicts(fit_noise(y))[rows - 1].below for y in planted])),
        coverage=float(covered.mean()),
        coverage_se=float(covered.std() / np.sqrt(tables)),
        rank_coverage=float(ranked.mean()),
        rank_coverage_se=float(ranked.std() / np.sqrt(tables)),
    )


def _covered(model: NoiseModel, means: Sequence[float]) -> float:
    intervals = row_intervals(model)
    return float(np.mean([i.low <= m <= i.high for i, m in zip(intervals, means, strict=True)]))


def _ranks_covered(y: np.ndarray, means: Sequence[float]) -> float:
    """The share of rows whose band meets the ranks the true means allow them (ties: any)."""
    truth = np.asarray(means)
    best = 1 + (truth[None, :] > truth[:, None]).sum(axis=1)
    worst = len(truth) - (truth[None, :] < truth[:, None]).sum(axis=1)
    bands = rank_bands(fit_noise(y))
    met = [lo <= w and b <= hi for (lo, hi), b, w in zip(bands, best, worst, strict=True)]
    return float(np.mean(met))
