"""A tuning study's trials (``harness.studies.trials``): a trial's request, the points drawn
from the study's journal, and the choice among the trials. (Trials trained rung by rung, and a
killed study resumed: tests/studies/test_tune.py.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

from harness import protocol as protocols
from harness.protocol import Tuning
from harness.runs.requests import RunRequest
from harness.studies.trials import (
    STUDY_NAME,
    Trial,
    TrialSpec,
    choose,
    draw_points,
    load_study,
    trial_request,
)


def _budget(trials: int = 3) -> Tuning:
    return dataclasses.replace(protocols.load("tiny").tuning, trials=trials)


def _trial(number: int, rung: int, dice: float | None) -> Trial:
    """A trial whose record says ``dice`` (None: it failed); nothing else is read here."""
    status = "failed" if dice is None else "succeeded"
    record = SimpleNamespace(status=status, mean_dice=dice, device_hours=0.1)
    return Trial(number, {"lr": 0.01}, plan=None, record=record, rung=rung)  # type: ignore[arg-type]


def test_a_trial_leaves_the_protocols_fold_out_and_runs_its_rungs_compressed_schedule(
    tmp_path: Path,
) -> None:
    proto = protocols.load("tiny")  # 2 epochs, fold 0
    tuning = _budget()
    request = RunRequest.from_options(
        model="unet", loss="dice", protocol="tiny", runs_dir=tmp_path / "runs"
    )
    values = {"lr": 0.01, "warmup_epochs": 1.0}
    trial = trial_request(request, proto, tuning, values, TrialSpec(epochs=1))
    overrides = dict(trial.value("overrides"))
    assert overrides["fold"] == tuning.fold != proto.fold
    assert overrides["exclude_folds"] == (proto.fold,)
    assert overrides["epochs"] == 1
    assert overrides["warmup_epochs"] == proto.warmup_epochs / 2
    assert trial.value("seeds") == (tuning.trial_seed,) and trial.value("folds") is None
    # A tuned warm-up is compressed like the protocol's; the caller's values are untouched.
    assert dict(trial.value("hparams")) == {"lr": 0.01, "warmup_epochs": 0.5}
    assert values["warmup_epochs"] == 1.0
    # At the protocol's own epochs: the protocol itself, no compression.
    full = dict(trial_request(request, proto, tuning, values).value("overrides"))
    assert "epochs" not in full and full["fold"] == tuning.fold


def test_the_points_depend_on_the_seed_alone_and_a_resumed_study_draws_none(
    tmp_path: Path,
) -> None:
    budget = _budget(3)
    first = draw_points(load_study(tmp_path / "a", budget), budget)
    assert (tmp_path / "a" / STUDY_NAME).is_file()
    assert [n for n, _, _ in first] == [0, 1, 2]
    assert not any(told for _, _, told in first)
    space = dict(budget.space)
    for _, values, _ in first:
        assert set(values) == set(space)
        assert all(space[k].low <= v <= space[k].high for k, v in values.items())
    assert draw_points(load_study(tmp_path / "b", budget), budget) == first  # same seed
    study = load_study(tmp_path / "a", budget)  # resumed: the points drawn before, no new one
    assert draw_points(study, budget) == first
    assert len(study.get_trials()) == 3
    study.tell(1, 0.5)
    told = draw_points(load_study(tmp_path / "a", budget), budget)
    assert [t for _, _, t in told] == [False, True, False]


def test_the_first_point_of_a_halving_study_is_the_default(tmp_path: Path) -> None:
    budget = _budget(3)
    defaults = {"lr": 0.01, "weight_decay": 1e-4}
    points = draw_points(load_study(tmp_path, budget), budget, defaults)
    assert points[0][1] == defaults
    assert len({p[1]["lr"] for p in points}) == 3


def test_the_best_of_the_deepest_rung_is_chosen_the_first_on_a_tie() -> None:
    found = [
        _trial(0, 0, 0.9),  # the best of rung 1, but rung 2 is deeper
        _trial(1, 0, 0.5),
        _trial(2, 0, 0.6),
        _trial(1, 1, 0.7),
        _trial(2, 1, 0.7),
    ]
    assert choose(found) == found[3]
    # When the deepest rung failed, the deepest rung where one succeeded.
    failed = [_trial(0, 0, 0.4), _trial(1, 0, 0.6), _trial(1, 1, None)]
    assert choose(failed) == failed[1]
    assert choose([_trial(0, 0, None), _trial(1, 0, None)]) is None
