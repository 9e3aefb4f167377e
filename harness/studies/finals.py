"""A tuning study concluded (``harness tune``, ``harness.studies.tune``): the chosen trial,
the summary and picture in the study folder, the final seeds and the picture beside their
records.

``conclude`` writes the summary (``tuning.json``, what the tuned entry's records carry: the
budget, the space, every trial and, under halving, what tuning gained over the default
configuration) and the tuning picture (every trial against each tuned value), and plans the
entry with the chosen values on the protocol's seeds; ``run_finals`` runs every chosen entry's
seeds together and ``copy_picture`` puts the picture beside each of their records.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_bytes, atomic_write_text, cannot_write
from harness.engine.events import TrainObserver
from harness.errors import RunFailed
from harness.pictures.charts import TUNING, TrialSeries, tuning_curves
from harness.protocol import Range, Tuning
from harness.runs.dispatch import dispatch
from harness.runs.executors import Executor
from harness.runs.planning import Plan, Planner, run_dir
from harness.studies import audit as audits
from harness.studies import halving
from harness.studies.halving import Rung
from harness.studies.space import EntrySpace
from harness.studies.trials import Study, Trial, choose

#: The summary of the study, beside its journal.
SUMMARY_NAME = "tuning.json"


@dataclass
class TuneOutcome:
    """What ``tune`` did: the study folder, every trial, the chosen one and the final plan.

    ``failed`` says why the entry has no row (every trial failed, or a final seed did);
    then ``chosen`` is None when no trial succeeded, and ``final`` the untuned plan.
    ``unwritten`` says what a full disk kept from being written (a table, a picture: the
    same line on every outcome of one command; '' when everything was written)."""

    folder: Path
    #: The entry's budget: the protocol's, over the entry's space.
    tuning: Tuning
    trials: list[Trial]
    chosen: Trial | None
    final: Plan
    picture: Path
    failed: str = ""
    unwritten: str = ""
    #: The entry's space (what its components declare, the protocol's for the rest).
    space: EntrySpace | None = None
    #: The rungs (one under a full schedule).
    rungs: tuple[Rung, ...] = ()
    #: The budget in words, as the entry's records say it (without ``tuned: ``).
    budget: str = ""
    #: The budget every entry of the command shares, in words (its space left out when an
    #: entry has its own).
    shared: str = ""
    #: Under halving: the default configuration's Dice and what tuning gained over it.
    default: dict[str, Any] | None = None
    #: ``--audit``: the audit's JSON, beside the study (None: not audited).
    audit: Path | None = None


def conclude(s: Study, observer: TrainObserver, planner: Planner) -> TuneOutcome:
    """The chosen trial, the summary and picture in the study folder, the final plan (the
    untuned one, never run, when every trial failed)."""
    proto = s.base.benchmark.protocol
    chosen = choose(s.trials)
    default = _default_gain(s, chosen) if chosen is not None else None
    summary = _summary(s, chosen, default)
    atomic_write_text(s.folder / SUMMARY_NAME, json.dumps(summary, indent=2) + "\n")
    picture = _picture(s, chosen)
    outcome = TuneOutcome(
        s.folder, s.tuning, s.trials, chosen, s.base, picture, space=s.space,
        rungs=s.rungs, budget=s.budget, default=default,
        audit=s.folder / audits.AUDIT_JSON if s.audited else None,
    )  # fmt: skip
    if chosen is None:
        outcome.failed = (
            f"{s.base.entry.label}: all {len(s.configs)} tuning trials failed; see their records"
        )
        observer.message(outcome.failed)
        return outcome
    observer.message(
        f"{s.base.entry.label}: chose trial {chosen.number + 1} ({_values(chosen.values)}), "
        f"mean Dice {chosen.dice:.4f} on fold {s.tuning.fold}; now the protocol's seeds on "
        f"fold {proto.fold}"
    )
    request = s.space.request(s.request, s.base.entry, chosen.values)
    outcome.final = planner.plan(request.replace(tuned=f"{s.tuning.trials}-{s.tuning.hash}"))
    outcome.final.tuning = summary
    return outcome


def _default_gain(s: Study, chosen: Trial) -> dict[str, Any] | None:
    """Under halving, the default configuration (number 0) against the chosen one, at the
    deepest rung the default trained: its Dice there and what tuning gained over it."""
    if not s.halving:
        return None
    default = [t for t in s.trials if t.number == 0]
    deepest = max(default, key=lambda t: t.rung)
    mine = next(t for t in s.trials if t.number == chosen.number and t.rung == deepest.rung)
    gain = None if deepest.dice is None or mine.dice is None else mine.dice - deepest.dice
    return {
        "trial": 0,
        "values": deepest.values,
        "mean_dice": deepest.dice,
        "rung": deepest.rung + 1,
        "epochs": deepest.epochs,
        "chosen_dice": mine.dice,
        "gain": gain,
    }


def _values(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in sorted(values.items()))


def _summary(s: Study, chosen: Trial | None, default: dict[str, Any] | None) -> dict[str, Any]:
    """The tuning as a tuned entry's records carry it."""
    found = s.trials
    out: dict[str, Any] = {
        "budget": f"tuned: {s.budget}",
        "tuning": s.tuning.to_dict(),
        "tuning_hash": s.tuning.hash,
        "space": s.space.to_dict(),
        "protocol_fold": s.base.benchmark.protocol.fold,
        "trial_benchmark": found[0].plan.benchmark.id,
        "study": s.folder.relative_to(found[0].plan.runs_dir).as_posix(),
        "trials": [t.to_dict(s.halving) for t in found],
        "chosen": (
            {"trial": chosen.number, "values": chosen.values, "mean_dice": chosen.dice}
            if chosen
            else None
        ),
        "trial_device_hours": sum(t.device_hours for t in found),
    }
    if s.halving:
        out["rungs"] = [
            {"rung": r.index + 1, "configs": r.configs, "epochs": r.epochs} for r in s.rungs
        ]
        if chosen is not None:
            out["chosen"].update(rung=chosen.rung + 1, epochs=chosen.epochs)
        out["default"] = default
    return out


def _picture(s: Study, chosen: Trial | None) -> Path:
    """``tuning.png`` in the study folder: every trial against each tuned value (a colour
    per rung under halving)."""
    if s.halving:
        series = [
            _series(f"rung {r.index + 1}: {r.epochs} epochs",
                    [t for t in s.trials if t.rung == r.index],
                    chosen if chosen is not None and chosen.rung == r.index else None)
            for r in s.rungs[: s.depth]
        ]  # fmt: skip
        title = f"{s.base.entry.label}: {len(s.configs)} configurations, rungs "
        title += halving.words(s.rungs)
    else:
        series = [_series("", s.trials, chosen)]
        title = f"{s.base.entry.label}: {len(s.trials)} trials"
    return tuning_curves(
        series, _space(s.tuning.space), s.folder / TUNING, title=f"{title} on fold {s.tuning.fold}"
    )


def _series(label: str, found: Sequence[Trial], chosen: Trial | None) -> TrialSeries:
    point = (chosen.values, chosen.dice) if chosen is not None else None
    return (label, [(t.values, t.dice) for t in found], point)


def _space(space: Sequence[tuple[str, Range]]) -> list[tuple[str, float, float, bool]]:
    return [(k, r.low, r.high, r.log) for k, r in space]


def run_finals(
    finals: Sequence[TuneOutcome],
    observer: TrainObserver,
    jobs: Callable[[int, int], None] | None,
    executor: Executor,
) -> str:
    """The chosen entries on the protocol's seeds, together (``harness.runs.dispatch``); a
    failed seed marks its outcome failed and the others go on. Returns what a full disk
    kept from being written ('' when nothing)."""
    if not finals:
        return ""
    try:
        dispatch([o.final for o in finals], observer, jobs, executor)
    except RunFailed as exc:  # it names the failed runs, after all have ended
        for o in finals:
            failed = [
                f"{job.unit} failed: {outcome.reason} (record: {job.record_path})"
                for job, outcome in getattr(exc, "failures", [])
                if job.plan is o.final
            ]
            if failed:
                o.failed = f"{o.final.entry.label}: {'; '.join(failed)}"
        return str(getattr(exc, "unwritten", ""))
    return ""


def copy_picture(outcome: TuneOutcome, seed: int, fold: int | None = None) -> str:
    """The tuning picture beside a record of the tuned entry; what a full disk kept from
    being written ('' when it was written, or the run has no folder)."""
    target = run_dir(outcome.final, seed, fold) / TUNING
    if not target.parent.is_dir():
        return ""
    try:
        atomic_write_bytes(target, outcome.picture.read_bytes())
    except OSError as exc:
        return f"{cannot_write(exc)}; not written: the tuning picture {target}"
    return ""
