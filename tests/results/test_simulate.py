"""Simulated tables (``harness.results.simulate``): seeded draws, each effect at its own level
of the design (image, fold, entry × fold, entry × image, seed, residual), a simulation fitted
to a table's design and noise, a planted difference, and a calibration that is the same for
the same seed. What the calibration says of the rules: tests/results/test_noise.py."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from harness.results.noise import (
    Components,
    Unit,
    expected_noise,
    fit_noise,
    minimum_detectable_difference,
)
from harness.results.simulate import Simulation, calibrate, fitted, simulate

#: Noise of the size the published tables measured (variances: sd 0.05 image, 0.022 seed,
#: 0.018 seed × image).
MEASURED = Components(image=0.05**2, entry_image=0.0, unit=0.022**2, residual=0.018**2)
#: Axes of a cross-validated draw: (table, row, fold, unit, image). Each effect is the same
#: across the axes named here (an image effect: every row and seed of a fold shares it).
SHARED_ACROSS = {
    "image": (1, 3),
    "fold": (1, 3, 4),
    "entry_fold": (3, 4),
    "entry_image": (3,),
    "unit": (4,),
    "residual": (),
}


def test_simulation_is_seeded() -> None:
    spec = Simulation((0.85,) * 3, MEASURED)
    assert simulate(spec, 2, seed=1).tobytes() == simulate(spec, 2, seed=1).tobytes()
    assert simulate(spec, 2, seed=1).tobytes() != simulate(spec, 2, seed=2).tobytes()


@pytest.mark.parametrize("effect", list(SHARED_ACROSS))
def test_each_effect_varies_at_its_own_level(effect: str) -> None:
    means = (0.8, 0.7, 0.6)
    alone = Components(**{name: 0.01 if name == effect else 0.0 for name in SHARED_ACROSS})
    spec = Simulation(means, alone, units=2, images=3, folds=2)
    drawn = simulate(spec, 2, seed=0)
    assert drawn.shape == (2, 3, 2, 2, 3)
    noise = drawn - np.asarray(means)[None, :, None, None, None]
    for axis in range(5):
        spread = np.ptp(noise, axis=axis)
        if axis in SHARED_ACROSS[effect]:
            assert np.allclose(spread, 0.0), (effect, axis)
        else:
            assert np.all(spread > 0), (effect, axis)
    assert 0.02 < noise.std() < 0.2  # drawn at its standard deviation, 0.1


def test_without_noise_a_table_is_its_means_and_one_fold_has_no_fold_axis() -> None:
    quiet = Components(0.0, 0.0, 0.0, 0.0)
    drawn = simulate(Simulation((0.8, 0.6), quiet, units=3, images=4), 5, seed=1)
    assert drawn.shape == (5, 2, 3, 4)
    assert np.array_equal(drawn[:, 0], np.full((5, 3, 4), 0.8))
    assert np.array_equal(drawn[:, 1], np.full((5, 3, 4), 0.6))


def test_a_fitted_simulation_has_the_tables_design_noise_and_means() -> None:
    drawn = simulate(Simulation((0.85, 0.8, 0.75), MEASURED, units=3, images=5), 1, seed=2)[0]
    model = fit_noise([[Unit(u) for u in row[: 2 + (r > 0)]] for r, row in enumerate(drawn)])
    spec = fitted(model)
    assert (spec.units, spec.images, spec.folds) == (3, 5, 1)  # the most seeds a row has
    assert spec.components == model.components
    assert spec.means == tuple(float(m) for m in model.means)
    assert fitted(model, [0.5, 0.4, 0.3]).means == (0.5, 0.4, 0.3)
    planted = spec.planted(1, 0.1)
    assert planted.means[1] == pytest.approx(spec.means[1] - 0.1)
    assert planted.means[::2] == spec.means[::2] and planted.components == spec.components


def test_a_calibration_is_the_same_for_the_same_seed() -> None:
    spec = Simulation((0.85,) * 4, MEASURED)
    result = calibrate(spec, tables=20, seed=3)
    assert calibrate(spec, tables=20, seed=3) == result
    assert calibrate(spec, tables=20, seed=4) != result
    assert result.tables == 20
    assert result.mdd == minimum_detectable_difference(expected_noise(MEASURED, spec.layout))
    for name in (f.name for f in fields(result)):
        if name not in ("tables", "mdd"):
            assert 0.0 <= getattr(result, name) <= 1.0, name
