"""Successive halving's pure parts (``harness.studies.halving``): the rungs of a budget, a
rung's compressed protocol, who goes on."""

from __future__ import annotations

import dataclasses

import pytest

from harness import protocol as protocols
from harness.protocol import Tuning
from harness.studies import halving
from harness.studies.halving import Rung


def _halving(trials: int, eta: int, min_epochs: int) -> Tuning:
    return Tuning(trials=trials, schedule="halving", eta=eta, min_epochs=min_epochs)


@pytest.mark.parametrize(
    ("trials", "eta", "min_epochs", "epochs", "expected"),
    [
        (6, 3, 6, 80, [(6, 6), (2, 18)]),  # the study's: the next rung would hold one
        (9, 3, 6, 80, [(9, 6), (3, 18)]),
        (27, 3, 6, 80, [(27, 6), (9, 18), (3, 54)]),
        (27, 3, 10, 80, [(27, 10), (9, 30), (3, 80)]),  # capped at the protocol's epochs
        (8, 2, 1, 4, [(8, 1), (4, 2), (2, 4)]),
        (4, 2, 1, 2, [(4, 1), (2, 2)]),  # the tests' budget under tiny
        (2, 3, 1, 2, [(2, 1)]),  # fewer than eta: one short rung chooses
    ],
)
def test_rungs(
    trials: int, eta: int, min_epochs: int, epochs: int, expected: list[tuple[int, int]]
) -> None:
    rungs = halving.rungs(_halving(trials, eta, min_epochs), epochs)
    assert [(r.configs, r.epochs) for r in rungs] == expected
    assert [r.index for r in rungs] == list(range(len(expected)))


def test_a_full_schedule_is_one_rung_of_every_trial_at_the_protocols_epochs() -> None:
    assert halving.rungs(Tuning(trials=6), 80) == (Rung(0, 6, 80),)


def test_cost_and_words() -> None:
    rungs = halving.rungs(_halving(6, 3, 6), 80)
    assert halving.trial_epochs(rungs) == 72 and [r.cost for r in rungs] == [36, 36]
    assert halving.words(rungs) == "6×6, 2×18 epochs"


def test_a_rung_compresses_the_protocol_and_its_warmup() -> None:
    proto = protocols.load("synthetic")  # 80 epochs, 1 epoch of warm-up
    assert halving.overrides(proto, 80) == ()  # the protocol itself
    assert halving.overrides(proto, 8) == (("epochs", 8), ("warmup_epochs", 0.1))
    derived = proto.with_values(halving.overrides(proto, 8))
    assert derived.epochs == 8 and derived.warmup_epochs == pytest.approx(0.1)
    assert derived.hash != proto.hash  # a rung's trials are a benchmark of their own
    assert halving.scaled(proto, 2.0, 20) == 0.5  # a tuned warm-up, compressed alike
    tiny = dataclasses.replace(protocols.load("tiny"), epochs=4)
    assert halving.overrides(tiny, 1) == (("epochs", 1), ("warmup_epochs", 0.125))


def test_promotion_keeps_the_best_breaks_ties_by_number_and_never_a_failure() -> None:
    scores = {0: 0.5, 1: 0.7, 2: None, 3: 0.7, 4: 0.1}
    assert halving.promote(scores, 2) == [1, 3]
    assert halving.promote(scores, 3) == [1, 3, 0]
    assert halving.promote(scores, 9) == [1, 3, 0, 4]  # the failed one never goes on
    assert halving.promote(dict(reversed(scores.items())), 2) == [1, 3]  # order of the input
    assert halving.promote({0: None, 1: None}, 1) == []
