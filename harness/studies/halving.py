"""Successive halving: the rungs of a tuning budget, what each trial trains, who goes on.

Every configuration first trains a short horizon, ``min_epochs``, with its learning-rate
schedule compressed to that horizon: a protocol whose ``epochs`` are the rung's and whose
warm-up is scaled by the same factor, so the schedule runs its whole course (warm-up, decay
to its end) in the short run; it is not the first epochs of a long run. The best ``1/eta``
go on to a horizon ``eta`` times longer, trained afresh (a compressed schedule cannot be
continued), and so on until the protocol's own epochs, or until the next rung would hold
fewer than two configurations: then the best of the last rung is chosen. With ``schedule =
"full"`` there is one rung, every configuration at the protocol's epochs (the budget
before halving existed).

Everything here is pure: the rungs from the budget and the protocol's epochs, the
overrides of a rung's protocol, and the promotion (the best by score, the lower number on
a tie, a failed configuration never), so the same records always give the same choice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.protocol import Protocol, Tuning


@dataclass(frozen=True)
class Rung:
    """One rung: how many configurations train, and for how many epochs."""

    index: int
    configs: int
    epochs: int

    @property
    def cost(self) -> int:
        """Trial-epochs: configurations times epochs."""
        return self.configs * self.epochs

    def __str__(self) -> str:
        return f"{self.configs}×{self.epochs}"


def rungs(tuning: Tuning, epochs: int) -> tuple[Rung, ...]:
    """The rungs of ``tuning`` under a protocol of ``epochs`` epochs: one rung of every trial
    at ``epochs`` for ``full``; for ``halving``, ``trials`` configurations at ``min_epochs``,
    then ``1/eta`` of them (rounded down) ``eta`` times longer, capped at ``epochs``, while
    at least two go on."""
    if tuning.schedule != "halving":
        return (Rung(0, tuning.trials, epochs),)
    out = [Rung(0, tuning.trials, min(tuning.min_epochs, epochs))]
    while out[-1].epochs < epochs and out[-1].configs // tuning.eta >= 2:
        last = out[-1]
        out.append(
            Rung(last.index + 1, last.configs // tuning.eta, min(last.epochs * tuning.eta, epochs))
        )
    return tuple(out)


def trial_epochs(schedule: Sequence[Rung]) -> int:
    """The trial-epochs of a schedule (each rung's configurations times its epochs)."""
    return sum(r.cost for r in schedule)


def words(schedule: Sequence[Rung]) -> str:
    """``6×6, 2×18 epochs``: each rung's configurations × epochs."""
    return ", ".join(map(str, schedule)) + " epochs"


def overrides(proto: Protocol, epochs: int) -> tuple[tuple[str, Any], ...]:
    """The protocol fields of a rung of ``epochs`` epochs: its epochs, and its warm-up scaled
    by the same factor (none at the protocol's own epochs: the protocol itself)."""
    if epochs == proto.epochs:
        return ()
    return (("epochs", epochs), ("warmup_epochs", scaled(proto, proto.warmup_epochs, epochs)))


def scaled(proto: Protocol, warmup: float, epochs: int) -> float:
    """A warm-up of ``warmup`` epochs under ``proto``, compressed to ``epochs`` epochs."""
    return warmup * epochs / proto.epochs


def promote(scores: Mapping[int, float | None], count: int) -> list[int]:
    """The ``count`` configurations (by number) that go on: the best scores, the lower
    number first on a tie; a failed one (None) never. In that order."""
    done = [(score, number) for number, score in scores.items() if score is not None]
    done.sort(key=lambda item: (-item[0], item[1]))
    return [number for _, number in done[:count]]
