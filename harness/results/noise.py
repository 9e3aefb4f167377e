"""The noise of a table's Dice: a fitted noise model, intervals, rank bands, verdicts against
the leader, and power. Pure functions over arrays (per-image Dice in; intervals, bands,
verdicts and numbers out); they know nothing of tables, records or markdown, and use fixed
random states, so the same scores always give the same bytes. ``docs/verdicts.md`` says why
each method was chosen and how it is calibrated.

The model. Row ``r`` of a table (an entry) has units ``u`` (a training run: a seed, or in a
cross-validated table a fold × seed, each fold with validation images of its own); a unit has
the Dice of each validation image ``i`` of its fold (the mean over the 29 classes)::

    Y[r, u, i] = μ_r + φ_f + a_i + d_rf + c_ri + b_ru + e_rui

with independent zero-mean normal effects: ``a`` image (an image is easy or hard for every
entry; shared by the rows), ``c`` entry × image, ``b`` unit (a training run's luck), ``e``
residual (unit × image), and, cross-validated only, ``φ`` fold (its training split, shared by
the rows) and ``d`` entry × fold. Their variances (``Components``) are estimated by the method
of moments (ANOVA mean squares) pooled over every row, so three seeds a row still give the
pooled variance dozens of degrees of freedom.

A row's true mean ``μ_r`` is its expected Dice over training seeds (and folds) and over images
drawn from the population the validation images come from: what a fresh training of the entry
scores on a fresh image. A row's observed mean is the table's: the mean over its folds of the
mean over the fold's units of the mean over the images. Its error is the shared part
``Σ_f w_rf A_f`` (the image and fold effects, the same for every row that covers the same
folds, so it cancels from a comparison) plus a part of its own with variance ``v_r``
(``NoiseModel.row_variance``).

Verdicts (``verdicts``): row ``i`` is *below* when the hypothesis "row ``i`` is a best entry"
is rejected by a step-down max-t test (Westfall and Young) over every row's statistic
``t_i = max_j (ȳ_j - ȳ_i) / se_ij``, its null distribution drawn from the fitted model with
every true mean equal: the maximum over rows takes the leader's selection into account, and
the family-wise error rate of the *below* marks is at most ``alpha`` in every configuration of
true means. Rank bands (``rank_bands``) are Mogstad, Romano, Shaikh and Wilhelm's marginal
confidence sets for ranks. Every null distribution comes from ``DRAWS`` seeded draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from scipy import special, stats

ALPHA = 0.05
#: The confidence level of intervals and rank bands.
LEVEL = 0.95
#: The power a minimum detectable difference is detected with.
POWER = 0.80
#: Draws of every null distribution, and the fixed seed they come from.
DRAWS = 20_000
SEED = 20_250_601
#: The most seeds ``seeds_needed`` considers.
SEEDS_CAP = 64

#: A variance below this (a standard deviation of 1e-12 Dice) is rounding, not noise.
_ROUNDING = 1e-24

# The mean squares, by index: residual (unit × image within a row and fold), unit (between a
# row's units within a fold), entry × image, image, entry × fold, fold.
_E, _W, _RI, _IM, _RG, _G = range(6)


@dataclass(frozen=True, eq=False)
class Unit:
    """One training run's scores: the Dice of each validation image of its fold (mean over
    classes), in the fold's image order; ``fold`` None outside a cross-validated table."""

    dice: np.ndarray
    fold: int | None = None


@dataclass(frozen=True)
class Components:
    """Variances (Dice², not standard deviations) of the model's effects."""

    image: float
    entry_image: float
    unit: float
    residual: float
    fold: float = 0.0
    entry_fold: float = 0.0

    def sd(self) -> dict[str, float]:
        """Standard deviations, by component."""
        return {k: math.sqrt(v) for k, v in vars(self).items()}


@dataclass(frozen=True)
class Layout:
    """Where a table's scores come from: ``counts[r][f]`` units of row ``r`` in fold ``f``
    (0: the row lacks the fold), and the validation images of each fold."""

    counts: tuple[tuple[int, ...], ...]
    images: tuple[int, ...]

    @classmethod
    def balanced(cls, rows: int, units: int, images: int, folds: int = 1) -> Layout:
        """Every row with ``units`` units (seeds) in each of ``folds`` folds."""
        return cls(((units,) * folds,) * rows, (images,) * folds)

    @property
    def rows(self) -> int:
        return len(self.counts)

    @property
    def folds(self) -> int:
        return len(self.images)

    @property
    def cross_validated(self) -> bool:
        return self.folds > 1


@dataclass(frozen=True, eq=False)
class MeanSquares:
    """ANOVA mean squares (``value``, ``df``: residual, unit, entry × image, image,
    entry × fold, fold) and what their expectations hold: E[unit] = σ²_unit + k_unit σ²_res,
    E[entry_image] = σ²_entry_image + k_entry_image σ²_res, E[image] = r_image σ²_image +
    σ²_entry_image + k_image σ²_res, E[fold] = r_fold σ²_shared + E[entry × fold]."""

    value: np.ndarray
    df: np.ndarray
    k_unit: float = 0.0
    k_entry_image: float = 0.0
    k_image: float = 0.0
    r_image: float = 1.0
    r_fold: float = 1.0
    inverse_units: float = 1.0  # mean over complete rows and folds of 1 / units


@dataclass(frozen=True, eq=False)
class NoiseModel:
    """A table's fitted noise. ``means`` are the rows' observed means, ``row_variance`` the
    variance of each row's mean beyond what every row shares (``df`` its degrees of
    freedom), ``loadings`` @ ``shared_variance`` the shared part (per fold), and
    ``interval_variance`` (``interval_df``) the whole variance of a row's mean about its
    true mean. ``heterogeneity`` is Bartlett's p that the rows' unit variances are equal."""

    means: np.ndarray
    layout: Layout
    components: Components
    row_variance: np.ndarray
    df: float
    loadings: np.ndarray
    shared_variance: np.ndarray
    interval_variance: np.ndarray
    interval_df: float
    mean_squares: MeanSquares
    heterogeneity: float | None = None

    @property
    def rows(self) -> int:
        return len(self.means)

    @property
    def replicated(self) -> bool:
        """Some row has two units or more in a fold: seed noise is estimated apart."""
        return bool(self.mean_squares.df[_W] > 0)

    @property
    def images_only(self) -> bool:
        """One unit a row (not cross-validated): the seed noise is unknown, and intervals and
        verdicts rest on the images alone (they understate the noise)."""
        return not self.layout.cross_validated and not self.replicated

    @property
    def leader(self) -> int:
        """The row with the best mean (the first of equals)."""
        return int(np.argmax(self.means))


# Reading the scores: blocks of units × images, one per (fold, row).

Blocks = list[list[np.ndarray | None]]


def _blocks(table: np.ndarray | Sequence[Sequence[Unit]]) -> tuple[Blocks, Layout]:
    """``table``: an array (rows, units, images), or (rows, folds, units, images), or rows of
    ``Unit``. Blocks are indexed [fold][row]."""
    if isinstance(table, np.ndarray):
        return _array_blocks(table)
    rows = [list(row) for row in table]
    if len(rows) < 2:
        raise ValueError(f"a table of {len(rows)} row(s): nothing to compare")
    folds = sorted({u.fold for row in rows for u in row}, key=lambda f: -1 if f is None else f)
    blocks: Blocks = [[None] * len(rows) for _ in folds]
    for r, row in enumerate(rows):
        if not row:
            raise ValueError(f"row {r} has no units (no run with per-image Dice)")
        for g, fold in enumerate(folds):
            dice = [np.asarray(u.dice, dtype=float) for u in row if u.fold == fold]
            if dice:
                blocks[g][r] = _stack(dice, r)
    return blocks, _layout(blocks)


def _array_blocks(table: np.ndarray) -> tuple[Blocks, Layout]:
    y = np.asarray(table, dtype=float)
    if y.ndim == 3:
        y = y[:, None]
    if y.ndim != 4 or y.shape[2] == 0 or y.shape[3] == 0:
        raise ValueError("scores must be (rows, units, images) or (rows, folds, units, images)")
    if y.shape[0] < 2:
        raise ValueError(f"a table of {y.shape[0]} row(s): nothing to compare")
    _check_finite(y, "the table")
    blocks: Blocks = [[y[r, g] for r in range(y.shape[0])] for g in range(y.shape[1])]
    return blocks, _layout(blocks)


def _stack(dice: list[np.ndarray], row: int) -> np.ndarray:
    if any(d.ndim != 1 or d.size == 0 for d in dice):
        raise ValueError(f"row {row} has a unit without per-image Dice")
    if len({d.size for d in dice}) > 1:
        raise ValueError(f"row {row}'s units of one fold have different numbers of images")
    block = np.stack(dice)
    _check_finite(block, f"row {row}")
    return block


def _check_finite(y: np.ndarray, where: str) -> None:
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{where} has a per-image Dice that is not a finite number")


def _layout(blocks: Blocks) -> Layout:
    images = []
    for g, fold in enumerate(blocks):
        sizes = {b.shape[1] for b in fold if b is not None}
        if len(sizes) > 1:
            raise ValueError(f"fold {g}'s rows have different numbers of validation images")
        images.append(sizes.pop())
    counts = tuple(
        tuple(0 if blocks[g][r] is None else blocks[g][r].shape[0] for g in range(len(blocks)))
        for r in range(len(blocks[0]))
    )
    return Layout(counts, tuple(images))


# Mean squares from scores.


def _within(blocks: Blocks) -> tuple[float, float, float, float, float, list[tuple]]:
    """Residual and unit sums of squares within blocks of two units or more (vectorised over
    blocks of one shape); also (variance of unit means, df) per block for Bartlett."""
    by_shape: dict[tuple[int, int], list[np.ndarray]] = {}
    for fold in blocks:
        for b in fold:
            if b is not None and b.shape[0] >= 2:
                by_shape.setdefault(b.shape, []).append(b)
    ss_e = df_e = ss_w = df_w = k_w = 0.0
    spread = []
    for (n, i), group in sorted(by_shape.items()):
        x = np.stack(group)
        units = x.mean(axis=2)
        images = x.mean(axis=1)
        grand = units.mean(axis=1)
        residual = x - units[:, :, None] - images[:, None, :] + grand[:, None, None]
        ss_e += float((residual**2).sum())
        df_e += len(group) * (n - 1) * (i - 1)
        between = ((units - grand[:, None]) ** 2).sum(axis=1)
        ss_w += float(between.sum())
        df_w += len(group) * (n - 1)
        k_w += len(group) * (n - 1) / i
        spread += [(float(v) / (n - 1), n - 1) for v in between]
    return ss_e, df_e, ss_w, df_w, k_w, spread


def _cells(blocks: Blocks) -> tuple[np.ndarray, ...]:
    """Entry × image and image sums of squares over each fold's (rows × images) table of the
    rows' image means, with their dfs and expectation coefficients."""
    ss_ri = df_ri = k_ri = ss_im = df_im = k_im = r_im = 0.0
    for fold in blocks:
        z, units = _image_means(fold)
        if len(z) < 2:
            continue
        inverse = float(np.mean(1 / units))
        rows, images = z.shape
        grand = z.mean()
        inter = z - z.mean(axis=1, keepdims=True) - z.mean(axis=0, keepdims=True) + grand
        df = (rows - 1) * (images - 1)
        ss_ri += float((inter**2).sum())
        df_ri += df
        k_ri += df * inverse
        ss_im += rows * float(((z.mean(axis=0) - grand) ** 2).sum())
        df_im += images - 1
        k_im += (images - 1) * inverse
        r_im += (images - 1) * rows
    return np.array([ss_ri, df_ri, k_ri, ss_im, df_im, k_im, r_im])


def _image_means(fold: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """The (rows present × images) table of each present row's image means over its units,
    and the rows' unit counts."""
    present = [b for b in fold if b is not None]
    units = np.array([b.shape[0] for b in present])
    if len(set(units.tolist())) == 1:
        return np.stack(present).mean(axis=1), units
    return np.stack([b.mean(axis=0) for b in present]), units


def _block_means(blocks: Blocks) -> np.ndarray:
    """(rows × folds) mean of each block (its units' mean Dice), NaN where a row lacks a fold."""
    means = np.full((len(blocks[0]), len(blocks)), np.nan)
    for g, fold in enumerate(blocks):
        rows = [r for r, b in enumerate(fold) if b is not None]
        means[rows, g] = _image_means(fold)[0].mean(axis=1)
    return means


def _folds(blocks: Blocks) -> tuple[float, float, float, float, float, float]:
    """Entry × fold and fold sums of squares over the (complete rows × folds) table of fold
    means; the mean of 1 / units over its cells."""
    if len(blocks) < 2:
        return 0.0, 0.0, 0.0, 0.0, 1.0, 1.0
    complete = [r for r in range(len(blocks[0])) if all(f[r] is not None for f in blocks)]
    if len(complete) < 2:
        raise ValueError("a cross-validated table needs two rows with every fold")
    x = _block_means(blocks)[complete]
    rows, folds = x.shape
    grand = x.mean()
    inter = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + grand
    inverse = float(np.mean([1 / f[r].shape[0] for f in blocks for r in complete]))
    ss_g = rows * float(((x.mean(axis=0) - grand) ** 2).sum())
    return float((inter**2).sum()), (rows - 1) * (folds - 1), ss_g, folds - 1, rows, inverse


def _mean_squares(blocks: Blocks) -> tuple[MeanSquares, float | None]:
    ss_e, df_e, ss_w, df_w, k_w, spread = _within(blocks)
    ss_ri, df_ri, k_ri, ss_im, df_im, k_im, r_im = _cells(blocks)
    ss_rg, df_rg, ss_g, df_g, r_g, inverse = _folds(blocks)
    ss = np.array([ss_e, ss_w, ss_ri, ss_im, ss_rg, ss_g])
    df = np.array([df_e, df_w, df_ri, df_im, df_rg, df_g], dtype=float)
    value = np.divide(ss, df, out=np.zeros(6), where=df > 0)
    ms = MeanSquares(
        value,
        df,
        k_unit=k_w / df_w if df_w else 0.0,
        k_entry_image=k_ri / df_ri if df_ri else 0.0,
        k_image=k_im / df_im if df_im else 0.0,
        r_image=r_im / df_im if df_im else 1.0,
        r_fold=float(r_g),
        inverse_units=inverse,
    )
    return ms, _bartlett(spread)


def _bartlett(spread: list[tuple[float, int]]) -> float | None:
    """Bartlett's p that the blocks' variances of unit means are equal (None: fewer than two
    blocks, or a block without spread)."""
    if len(spread) < 2 or any(v <= 0 for v, _ in spread):
        return None
    var = np.array([v for v, _ in spread])
    df = np.array([d for _, d in spread], dtype=float)
    total = df.sum()
    pooled = float((df * var).sum() / total)
    statistic = total * math.log(pooled) - float((df * np.log(var)).sum())
    correction = 1 + (float((1 / df).sum()) - 1 / total) / (3 * (len(spread) - 1))
    return float(special.chdtrc(len(spread) - 1, statistic / correction))


# From mean squares to a model: each variance a linear form over the six mean squares.


def _unit_form(index: int) -> np.ndarray:
    form = np.zeros(6)
    form[index] = 1.0
    return form


def _value(form: np.ndarray, ms: MeanSquares) -> float:
    return float(form @ ms.value)


def _satterthwaite(forms: np.ndarray, ms: MeanSquares) -> float:
    """The fewest degrees of freedom among linear forms of mean squares (one a row of
    ``forms``), each by Satterthwaite's approximation."""
    terms = np.atleast_2d(forms) * ms.value
    df = np.where(ms.df > 0, ms.df, np.inf)
    denominator = (terms**2 / df).sum(axis=1)
    used = denominator > 0
    if not used.any():
        return math.inf
    return float((terms.sum(axis=1)[used] ** 2 / denominator[used]).min())


def _component_forms(ms: MeanSquares) -> dict[str, np.ndarray]:
    """The linear forms of σ²_residual, σ²_unit, σ²_entry_image, σ²_image and (cross-validated)
    the variance of a row's fold mean and of the shared fold effect; one estimated below zero
    is zero. Without units to compare, the residual is counted in the entry × image term."""
    zero = np.zeros(6)
    forms = {"residual": _unit_form(_E) if ms.df[_E] > 0 else zero}
    forms["unit"] = _unit_form(_W) - ms.k_unit * forms["residual"] if ms.df[_W] > 0 else zero
    forms["entry_image"] = (
        _unit_form(_RI) - ms.k_entry_image * forms["residual"] if ms.df[_RI] > 0 else zero
    )
    forms["image"] = (
        (_unit_form(_IM) - _unit_form(_RI) + (ms.k_entry_image - ms.k_image) * forms["residual"])
        / ms.r_image
        if ms.df[_IM] > 0
        else zero
    )
    forms["fold_mean"] = _unit_form(_RG)
    forms["shared_fold"] = (_unit_form(_G) - _unit_form(_RG)) / ms.r_fold if ms.df[_G] else zero
    return {k: (f if _value(f, ms) > 0 else zero) for k, f in forms.items()}


def _components(forms: dict[str, np.ndarray], ms: MeanSquares, layout: Layout) -> Components:
    v = {k: _value(f, ms) for k, f in forms.items()}
    if not layout.cross_validated:
        return Components(v["image"], v["entry_image"], v["unit"], v["residual"])
    per_image = float(np.mean([1 / i for i in layout.images]))
    by_images = v["entry_image"] * per_image
    runs = (v["unit"] + v["residual"] * per_image) * ms.inverse_units
    return Components(
        v["image"],
        v["entry_image"],
        v["unit"],
        v["residual"],
        fold=max(v["shared_fold"] - v["image"] * per_image, 0.0),
        entry_fold=max(v["fold_mean"] - by_images - runs, 0.0),
    )


def _row_forms(forms: dict[str, np.ndarray], counts: np.ndarray, images: int) -> np.ndarray:
    """Each row's ``v_r`` as a form (rows × 6): σ²_c / I + (σ²_b + σ²_e / I) / n_r; or,
    cross-validated, the variance of a fold mean over the row's number of folds."""
    if counts.shape[1] > 1:
        return forms["fold_mean"][None, :] / (counts > 0).sum(axis=1)[:, None]
    runs = forms["unit"] + forms["residual"] / images
    return forms["entry_image"][None, :] / images + runs[None, :] / counts[:, :1]


def _model(means: np.ndarray, ms: MeanSquares, layout: Layout) -> NoiseModel:
    forms = _component_forms(ms)
    counts = np.array(layout.counts)
    rows = _row_forms(forms, counts, layout.images[0])
    loadings = (counts > 0) / (counts > 0).sum(axis=1, keepdims=True)
    if layout.cross_validated:
        shared = np.repeat(forms["shared_fold"][None, :], layout.folds, axis=0)
    else:
        shared = forms["image"][None, :] / layout.images[0]
    intervals = rows + (loadings**2) @ shared
    return NoiseModel(
        means=np.asarray(means, dtype=float),
        layout=layout,
        components=_components(forms, ms, layout),
        row_variance=rows @ ms.value,
        df=_satterthwaite(rows, ms),
        loadings=loadings,
        shared_variance=shared @ ms.value,
        interval_variance=intervals @ ms.value,
        interval_df=_satterthwaite(intervals, ms),
        mean_squares=ms,
    )


def fit_noise(table: np.ndarray | Sequence[Sequence[Unit]]) -> NoiseModel:
    """The noise model of a table: ``table`` is an array of per-image Dice (rows, units,
    images) or, cross-validated, (rows, folds, units, images), or a sequence of rows, each a
    sequence of ``Unit``. Raises ValueError on a table of one row, a row or unit without
    per-image Dice, or a table whose scores do not vary."""
    blocks, layout = _blocks(table)
    ms, heterogeneity = _mean_squares(blocks)
    means = np.nanmean(_block_means(blocks), axis=1)
    model = replace(_model(means, ms, layout), heterogeneity=heterogeneity)
    if not np.all(model.row_variance > _ROUNDING):
        raise ValueError("the table's per-image Dice do not vary: there is no noise to measure")
    return model


def refit(
    means: Sequence[float],
    mean_squares: MeanSquares,
    layout: Layout,
    heterogeneity: float | None = None,
) -> NoiseModel:
    """The model ``fit_noise`` gave, rebuilt from what determines it: the rows' means, the
    mean squares and the layout (a table's twin keeps them, so that power and comparisons need
    no records). Raises ValueError when they are not a table's: fewer than two rows, a layout
    that does not fit, or no noise."""
    counts = np.asarray(layout.counts)
    if layout.rows < 2 or len(means) != layout.rows:
        raise ValueError(f"a model of {layout.rows} row(s) with {len(means)} mean(s)")
    if counts.ndim != 2 or counts.shape[1] != layout.folds or (counts < 0).any():
        raise ValueError("the layout's unit counts do not fit its folds")
    if not (counts > 0).any(axis=1).all() or min(layout.images) < 1:
        raise ValueError("a row without units, or a fold without images")
    value, df = np.asarray(mean_squares.value, float), np.asarray(mean_squares.df, float)
    if value.shape != (6,) or df.shape != (6,) or not np.isfinite([*value, *df]).all():
        raise ValueError("mean squares must be six finite values with six degrees of freedom")
    model = _model(np.asarray(means, dtype=float), mean_squares, layout)
    spread = np.concatenate([model.row_variance, model.interval_variance])
    if not (np.isfinite(spread).all() and (model.row_variance > _ROUNDING).all()):
        raise ValueError("the mean squares describe no noise")
    return replace(model, heterogeneity=heterogeneity)


def expected_noise(
    components: Components, layout: Layout, means: Sequence[float] | None = None
) -> NoiseModel:
    """The model a balanced table of ``layout`` would have, its mean squares at their
    expectations under ``components`` (what a table of this design and noise is planned on)."""
    rows, folds = layout.rows, layout.folds
    units, images = layout.counts[0][0], layout.images[0]
    c = components
    res, runs = c.residual, c.unit + c.residual / images
    cells = c.entry_image + c.residual / units
    fold_mean = c.entry_fold + c.entry_image / images + runs / units
    value = [res, runs, cells, rows * c.image + cells, fold_mean, 0.0]
    value[_G] = rows * (c.fold + c.image / images) + fold_mean
    df = [
        rows * folds * (units - 1) * (images - 1),
        rows * folds * (units - 1),
        folds * (rows - 1) * (images - 1),
        folds * (images - 1),
        (rows - 1) * (folds - 1),
        folds - 1,
    ]
    ms = MeanSquares(
        np.array(value),
        np.array(df, dtype=float),
        1 / images,
        1 / units,
        1 / units,
        rows,
        rows,
        1 / units,
    )
    centre = np.zeros(rows) if means is None else np.asarray(means, dtype=float)
    return _model(centre, ms, layout)


def project(model: NoiseModel, units: int) -> NoiseModel:
    """``model``'s table with ``units`` seeds a row (a fold, cross-validated) at its fitted
    noise: the same rows, folds and images (the largest fold's), mean squares at expectation."""
    layout = Layout.balanced(model.rows, units, max(model.layout.images), model.layout.folds)
    return expected_noise(model.components, layout, model.means)


# Null distributions: the rows' mean errors drawn with every true mean equal, once per design.


@dataclass(frozen=True)
class _Design:
    """What a null distribution depends on: the rows' own variances over the largest, and
    (only where the rows do not share them alike) the loadings and shared variances."""

    variance: tuple[float, ...]
    loadings: tuple[tuple[float, ...], ...] = ()
    shared: tuple[float, ...] = ()

    @property
    def exchangeable(self) -> bool:
        return not self.loadings and len(set(self.variance)) == 1


@dataclass(frozen=True, eq=False)
class _Null:
    z: np.ndarray  # (DRAWS, rows) errors of the rows' means
    se: np.ndarray  # (rows, rows) standard error of each difference (inf on the diagonal)
    above: np.ndarray  # (DRAWS, rows) max over j != i of (z_j - z_i) / se_ij
    apart: np.ndarray  # (DRAWS, rows) max over j != i of |z_j - z_i| / se_ij
    tail: np.ndarray  # (DRAWS, rows) max of ``above`` over rows k.. (exchangeable designs)


def _design(model: NoiseModel) -> tuple[_Design, float]:
    """The model's design and the scale (the largest row variance) its variances are relative
    to: variances rounded to steps of 2 % (loadings to 1e-9), so that tables of one design
    share their null draws (the draws depend on the rounded design alone)."""
    scale = float(model.row_variance.max())
    variance = _rounded(model.row_variance / scale)
    if _shared_cancels(model):
        return _Design(variance), scale
    loadings = tuple(tuple(row) for row in np.round(model.loadings, 9).tolist())
    return _Design(variance, loadings, _rounded(model.shared_variance / scale)), scale


def _rounded(ratios: np.ndarray) -> tuple[float, ...]:
    """Positive ratios to the nearest power of 1.02 (zero stays zero)."""
    step = math.log(1.02)
    logs = np.log(np.where(ratios > 0, ratios, 1.0))
    return tuple(np.where(ratios > 0, np.exp(np.round(logs / step) * step), 0.0).tolist())


def _shared_cancels(model: NoiseModel) -> bool:
    """Every row covers the same folds alike, so the shared effects cancel from comparisons."""
    return bool((model.loadings == model.loadings[0]).all())


def _pair_se(variance: np.ndarray, loadings: np.ndarray, shared: np.ndarray) -> np.ndarray:
    se = variance[:, None] + variance[None, :]
    if loadings.size:
        gap = loadings[:, None, :] - loadings[None, :, :]
        se = se + (gap**2 * shared).sum(axis=2)
    se = np.sqrt(se)
    np.fill_diagonal(se, np.inf)
    return se


@lru_cache(maxsize=4)
def _null(design: _Design) -> _Null:
    variance = np.array(design.variance)
    loadings, shared = np.array(design.loadings), np.array(design.shared)
    rng = np.random.default_rng(SEED)
    z = rng.standard_normal((DRAWS, variance.size)) * np.sqrt(variance)
    if loadings.size:
        z += (rng.standard_normal((DRAWS, shared.size)) * np.sqrt(shared)) @ loadings.T
    se = _pair_se(variance, loadings, shared)
    above = np.empty_like(z)
    apart = np.empty_like(z)
    for i in range(variance.size):
        t = (z - z[:, [i]]) / se[i]
        apart[:, i] = np.abs(t).max(axis=1)
        t[:, i] = -np.inf
        above[:, i] = t.max(axis=1)
    tail = np.maximum.accumulate(above[:, ::-1], axis=1)[:, ::-1]
    return _Null(z, se, above, apart, tail)


@lru_cache(maxsize=64)
def _scale(df: int, stream: int = 1) -> np.ndarray:
    """Draws of s = sqrt(χ²_df / df), the estimated over the true standard error (df rounded
    down, so the test errs on the safe side); ``stream`` keeps two tables' draws apart."""
    u = (np.random.default_rng(SEED + stream).permutation(DRAWS) + 0.5) / DRAWS  # stratified
    return np.sqrt(stats.chi2.ppf(u, df) / df)


def _df(df: float) -> int:
    """Degrees of freedom rounded down (to a coarser step above 30, so that tables of one
    design share their null distributions): the test errs on the safe side."""
    if df < 30:
        return max(1, int(df))
    if df >= 1000:
        return 1000
    step = 5 if df < 100 else 50
    return int(df // step * step)


def _observed_se(model: NoiseModel) -> np.ndarray:
    loadings, shared = model.loadings, model.shared_variance
    if _shared_cancels(model):
        loadings, shared = np.empty((0,)), np.empty((0,))
    return _pair_se(model.row_variance, loadings, shared)


# Intervals and rank bands.


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def row_intervals(model: NoiseModel, level: float = LEVEL) -> list[Interval]:
    """Each row's ``level`` confidence interval for its true mean: the mean ± the t quantile
    (``interval_df``) times the standard error of the mean (seeds, folds and images), cut to
    the Dice's range [0, 1]."""
    _check_level(level)
    half = stats.t.ppf(0.5 + level / 2, model.interval_df) * np.sqrt(model.interval_variance)
    low, high = np.clip(model.means - half, 0, 1), np.clip(model.means + half, 0, 1)
    return [Interval(float(lo), float(hi)) for lo, hi in zip(low, high, strict=True)]


def rank_bands(model: NoiseModel, level: float = LEVEL) -> list[tuple[int, int]]:
    """Each row's ``level`` confidence band for its rank (1 the best): Mogstad, Romano, Shaikh
    and Wilhelm's marginal set. Row i's differences to every other row get simultaneous
    two-sided intervals (max-|t| critical value from the null draws); the band runs from one
    more than the rows surely above it to the count of rows minus those surely below it."""
    _check_level(level)
    design, _ = _design(model)
    critical = _critical_apart(design, _df(model.df), level)
    se = _observed_se(model)
    t = (model.means[None, :] - model.means[:, None]) / se
    above = (t > critical[:, None]).sum(axis=1)
    below = (-t > critical[:, None]).sum(axis=1)
    return [(1 + int(a), model.rows - int(b)) for a, b in zip(above, below, strict=True)]


@lru_cache(maxsize=64)
def _critical_apart(design: _Design, df: int, level: float) -> np.ndarray:
    null = _null(design)
    return np.quantile(null.apart / _scale(df)[:, None], level, axis=0)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"a confidence level must lie between 0 and 1, not {level}")


# Verdicts against the leader.


@dataclass(frozen=True)
class Verdict:
    """A row against the table's best. ``leader``: the row every other is tested against;
    ``below``: it is surely not a best entry (family-wise error at most alpha); ``p_value``:
    the step-down adjusted p of "this row is a best entry" (None for the leader);
    ``beats_leader``: the probability its true mean exceeds the leader's (a t posterior on the
    difference, ignoring the leader's selection; None for the leader); ``gap``: the leader's
    mean minus the row's."""

    leader: bool
    below: bool
    p_value: float | None
    beats_leader: float | None
    gap: float


def verdicts(model: NoiseModel, alpha: float = ALPHA) -> list[Verdict]:
    """Every row against the leader (a leaderboard's #1, an ablation's best value): a
    step-down max-t test of "row i is a best entry" over all rows (``adjusted_p``)."""
    _check_level(1 - alpha)
    p = adjusted_p(model)
    leader = model.leader
    se = _observed_se(model)[:, leader]
    gap = model.means[leader] - model.means
    beats = special.stdtr(model.df, -gap / np.where(np.isinf(se), 1, se))
    return [
        Verdict(
            leader=r == leader,
            below=r != leader and bool(p[r] < alpha),
            p_value=None if r == leader else float(p[r]),
            beats_leader=None if r == leader else float(beats[r]),
            gap=float(gap[r]),
        )
        for r in range(model.rows)
    ]


def adjusted_p(model: NoiseModel) -> np.ndarray:
    """Step-down (Westfall-Young) adjusted p of each row's hypothesis "row i is a best entry",
    its statistic ``t_i = max_j (ȳ_j - ȳ_i) / se_ij``: rows in order of falling t, each p the
    chance under the null that the largest t* among the rows not yet rejected reaches it."""
    design, _ = _design(model)
    se = _observed_se(model)
    t = ((model.means[None, :] - model.means[:, None]) / se).max(axis=1)
    order = np.argsort(-t, kind="stable")
    if design.exchangeable:  # the rows not yet rejected at step k: any k-th to last rows
        tail = _sorted_tail(design, _df(model.df))
    else:
        tail = np.sort(
            _tail_max(_null(design).above[:, order]) / _scale(_df(model.df))[:, None], axis=0
        )
    reached = [DRAWS - np.searchsorted(tail[:, k], t[r]) for k, r in enumerate(order)]
    p = np.empty(model.rows)
    p[order] = np.maximum.accumulate(np.array(reached) / DRAWS)
    return p


def _tail_max(x: np.ndarray) -> np.ndarray:
    """Column k: the maximum of columns k, k + 1, ... (the hypotheses left at step k)."""
    return np.maximum.accumulate(x[:, ::-1], axis=1)[:, ::-1]


@lru_cache(maxsize=16)
def _sorted_tail(design: _Design, df: int) -> np.ndarray:
    return np.sort(_null(design).tail / _scale(df)[:, None], axis=0)


# The same entry in two tables (unpaired).


@dataclass(frozen=True)
class Difference:
    """Row ``b`` of one table minus row ``a`` of another: the difference, its simultaneous
    interval (over every pair compared), whether the interval excludes 0 (``real``), and the
    adjusted p (single-step max-|t|)."""

    difference: float
    low: float
    high: float
    real: bool
    p_value: float


def compare(
    a: NoiseModel, b: NoiseModel, pairs: Sequence[tuple[int, int]], alpha: float = ALPHA
) -> list[Difference]:
    """The same entries in two tables: for each ``(row of a, row of b)``, the difference of
    their means, with each row's whole noise (seeds, folds and images: the tables are not
    paired) and a max-|t| correction over the pairs, its null drawn from both models."""
    _check_level(1 - alpha)
    ia, ib = _pair_rows(a, b, pairs)
    va, vb = a.interval_variance[ia], b.interval_variance[ib]
    rng = np.random.default_rng(SEED + 3)
    noise = _table_draws(b, ib, rng) - _table_draws(a, ia, rng)
    sa, sb = _scale(_df(a.interval_df), 1), _scale(_df(b.interval_df), 2)
    spread = np.sqrt(va * sa[:, None] ** 2 + vb * sb[:, None] ** 2)
    largest = np.abs(noise / spread).max(axis=1)
    se = np.sqrt(va + vb)
    difference = b.means[ib] - a.means[ia]
    critical = float(np.quantile(largest, 1 - alpha))
    p = (largest[:, None] >= np.abs(difference / se)[None, :]).mean(axis=0)
    return [
        Difference(
            float(d), float(d - critical * s), float(d + critical * s), bool(q < alpha), float(q)
        )
        for d, s, q in zip(difference, se, p, strict=True)
    ]


def _pair_rows(
    a: NoiseModel, b: NoiseModel, pairs: Sequence[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    if not pairs:
        raise ValueError("no rows to compare: the two tables share no entry")
    ia, ib = (np.array(side, dtype=int) for side in zip(*pairs, strict=True))
    for rows, model, name in ((ia, a, "first"), (ib, b, "second")):
        if rows.min() < 0 or rows.max() >= model.rows:
            raise ValueError(f"a pair names a row the {name} table lacks ({model.rows} rows)")
    return ia, ib


def _table_draws(model: NoiseModel, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws of the chosen rows' errors about their true means (own and shared parts)."""
    own = rng.standard_normal((DRAWS, rows.size)) * np.sqrt(model.row_variance[rows])
    shared = rng.standard_normal((DRAWS, model.shared_variance.size))
    return own + (shared * np.sqrt(model.shared_variance)) @ model.loadings[rows].T


# Power.


class NotResolvable(ValueError):
    """No number of seeds up to the cap resolves the difference asked for."""


def detection_power(model: NoiseModel, delta: float, alpha: float = ALPHA) -> float:
    """The chance that an entry whose true mean lies ``delta`` below the table's other entries
    (all equal) is marked below them, at the table's noise and design (``verdicts``)."""
    _check_delta(delta)
    curve = _PowerCurve.of(model, alpha)
    return curve.power(delta / curve.unit)


def minimum_detectable_difference(
    model: NoiseModel, power: float = POWER, alpha: float = ALPHA
) -> float:
    """The smallest gap in true mean Dice between an entry and the table's other entries (all
    equal) that ``verdicts`` marks below with chance ``power``: the table's resolution."""
    _check_level(power)
    curve = _PowerCurve.of(model, alpha)
    if np.allclose(curve.se, curve.se[0]):  # one se: the power is a quantile of the draws
        shortfall = curve.threshold - curve.gaps.max(axis=1)
        return max(float(np.quantile(shortfall, power)), 0.0) * float(curve.se[0]) * curve.unit
    low, high = 0.0, 1.0
    while curve.power(high) < power:
        low, high = high, 2 * high
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if curve.power(middle) < power else (low, middle)
    return high * curve.unit


@dataclass(frozen=True, eq=False)
class _PowerCurve:
    """The chance that an entry ``delta`` (in units of ``unit``) below the others has a t that
    passes the first step's critical value (the whole table's), which marks it below."""

    gaps: np.ndarray  # (DRAWS, rows - 1) (z_j - z_p) / se_pj for the others j
    se: np.ndarray  # (rows - 1,) se_pj in units
    threshold: np.ndarray  # (DRAWS,) the critical value times the scale draw
    unit: float

    @classmethod
    def of(cls, model: NoiseModel, alpha: float) -> _PowerCurve:
        _check_level(1 - alpha)
        design, scale = _design(model)
        null = _null(design)
        s = _scale(_df(model.df))
        critical = np.quantile(null.tail[:, 0] / s, 1 - alpha)
        row = int(np.argsort(model.row_variance, kind="stable")[model.rows // 2])
        se = np.delete(null.se[row], row)
        gaps = np.delete(null.z - null.z[:, [row]], row, axis=1) / se
        return cls(gaps, se, critical * s, math.sqrt(scale))

    def power(self, delta: float) -> float:
        t = (self.gaps + delta / self.se).max(axis=1)
        return float((t >= self.threshold).mean())


def seeds_needed(
    model: NoiseModel,
    delta: float,
    power: float = POWER,
    alpha: float = ALPHA,
    cap: int = SEEDS_CAP,
) -> int:
    """The fewest seeds a row (a fold, cross-validated: the table then has folds × seeds
    units a row) that give this table's rows, images and noise a minimum detectable difference
    of at most ``delta``. Raises ``NotResolvable`` when ``cap`` seeds do not, saying what they
    resolve, and ValueError when the table cannot tell seed noise apart (one seed a row or
    fold) or ``delta`` is not positive."""
    _check_delta(delta)
    if not model.replicated:
        raise ValueError(
            "the table has one seed a row (or a fold): its seed noise is not measured apart, "
            "so no seed count can be planned; run two seeds or more of some entries"
        )
    at_cap = minimum_detectable_difference(project(model, cap), power, alpha)
    if at_cap > delta:
        raise NotResolvable(_unresolvable(model, delta, cap, at_cap, power, alpha))
    low, high = 1, cap  # low does not resolve delta (or is below 2 seeds), high does
    while high - low > 1:
        middle = (low + high) // 2
        if minimum_detectable_difference(project(model, middle), power, alpha) <= delta:
            high = middle
        else:
            low = middle
    return max(high, 2)


def _unresolvable(
    model: NoiseModel, delta: float, cap: int, at_cap: float, power: float, alpha: float
) -> str:
    floor = minimum_detectable_difference(project(model, 1_000_000), power, alpha)
    text = f"a difference of {delta:.4f} is not resolvable with up to {cap} seeds at this noise"
    text += f" ({cap} seeds resolve {at_cap:.4f}"
    if floor > delta:
        text += f"; no number of seeds resolves less than {floor:.4f}: more validation images"
    return text + ")"


def _check_delta(delta: float) -> None:
    if not delta > 0 or not math.isfinite(delta):
        raise ValueError(f"a difference to detect must be a positive number of Dice, not {delta}")
