"""A tuning study concluded (``harness.studies.finals``): the choice, the summary and picture
in the study folder, the final plan, and the picture beside a final record. Here the trials'
records are made up (nothing trains); tuning end to end: tests/studies/test_tune.py."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

from harness.engine.events import NullObserver
from harness.pictures.charts import TUNING
from harness.runs.planning import Planner, run_dir
from harness.runs.requests import RunRequest
from harness.studies import halving
from harness.studies.finals import SUMMARY_NAME, conclude, copy_picture, run_finals
from harness.studies.space import entry_space
from harness.studies.trials import Study

#: Rung 1 (4 configurations × 1 epoch), then configurations 0 and 2 at rung 2 (2 × 2 epochs).
DICE = {(0, 0): 0.6, (1, 0): 0.4, (2, 0): 0.7, (3, 0): 0.5, (0, 1): 0.65, (2, 1): 0.8}


class _Said(NullObserver):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def _study(tmp: Path, failed: bool = False) -> tuple[Study, Planner]:
    """A halving study of 4 configurations whose trials' records say ``DICE`` (every one
    failed: ``failed``)."""
    request = RunRequest.from_options(
        model="unet",
        loss="dice",
        optimizer="sgd",
        protocol="tiny",
        device="cpu",
        runs_dir=tmp / "runs",
        leaderboards_dir=tmp / "boards",
    )
    planner = Planner()
    base = planner.plan(request)
    proto = base.benchmark.protocol
    space = entry_space(base.entry, proto, base.registry)
    tuning = dataclasses.replace(
        proto.tuning, trials=4, schedule="halving", eta=2, min_epochs=1, space=space.ranges
    )
    s = Study(request, base, tuning, space, tmp / "runs" / "tuning" / "study")
    s.folder.mkdir(parents=True)
    s.rungs = halving.rungs(tuning, proto.epochs)
    s.depth = len(s.rungs)
    s.configs = {n: {"lr": 0.001 * (n + 1), "weight_decay": 1e-4} for n in range(4)}
    for (number, rung), dice in DICE.items():
        trial = s.trial(planner, number, s.rungs[rung])
        status = "failed" if failed else "succeeded"
        trial.record = SimpleNamespace(status=status, mean_dice=dice, device_hours=0.5)  # type: ignore[assignment]
        s.trials.append(trial)
    return s, planner


def test_the_best_of_the_last_rung_is_chosen_and_its_summary_says_the_gain(
    tmp_path: Path,
) -> None:
    s, planner = _study(tmp_path)
    said = _Said()
    outcome = conclude(s, said, planner)
    assert not outcome.failed
    assert (outcome.chosen.number, outcome.chosen.rung) == (2, 1)
    assert "chose trial 3" in said.lines[-1] and "mean Dice 0.8000 on fold 1" in said.lines[-1]
    summary = json.loads((s.folder / SUMMARY_NAME).read_text())
    assert summary["chosen"] == {
        "trial": 2, "values": s.configs[2], "mean_dice": 0.8, "rung": 2, "epochs": 2
    }  # fmt: skip
    assert summary["default"]["mean_dice"] == 0.65 and summary["default"]["rung"] == 2
    assert abs(summary["default"]["gain"] - 0.15) < 1e-9
    assert summary["trial_device_hours"] == 3.0 and len(summary["trials"]) == 6
    assert [r["configs"] for r in summary["rungs"]] == [4, 2]
    assert summary["budget"] == f"tuned: {s.budget}"
    assert outcome.picture == s.folder / TUNING and outcome.picture.stat().st_size > 0
    # The final plan: the chosen values on the protocol's seeds, carrying the summary.
    assert outcome.final.entry.tuned == f"4-{s.tuning.hash}"
    assert outcome.final.tuning == summary


def test_a_study_whose_trials_all_failed_has_no_row_and_says_so(tmp_path: Path) -> None:
    s, planner = _study(tmp_path, failed=True)
    said = _Said()
    outcome = conclude(s, said, planner)
    assert outcome.chosen is None and outcome.default is None
    assert outcome.failed == f"{s.base.entry.label}: all 4 tuning trials failed; see their records"
    assert said.lines == [outcome.failed]
    assert outcome.final is s.base  # the untuned plan, never run
    summary = json.loads((s.folder / SUMMARY_NAME).read_text())
    assert summary["chosen"] is None and summary["default"] is None
    assert run_finals([], said, None, None) == ""  # type: ignore[arg-type]  # no final to run


def test_the_picture_goes_beside_each_final_record(tmp_path: Path) -> None:
    s, planner = _study(tmp_path)
    outcome = conclude(s, NullObserver(), planner)
    seed = outcome.final.seeds[0]
    target = run_dir(outcome.final, seed) / TUNING
    assert copy_picture(outcome, seed) == "" and not target.parent.exists()  # no run: nothing
    target.parent.mkdir(parents=True)
    assert copy_picture(outcome, seed) == ""
    assert target.read_bytes() == outcome.picture.read_bytes()
