"""Sweeps (``harness.studies.sweep``): one axis varied, the rest fixed; every plan of a sweep is
continued by the sweep's own command. (``harness sweep`` and its ablation table:
tests/cli/test_sweep.py.)"""

from __future__ import annotations

from pathlib import Path

from harness.runs.planning import Planner
from harness.runs.requests import RunRequest
from harness.studies.sweep import parse_vary, sweep_plans


def test_every_plan_of_a_sweep_is_continued_by_the_sweep(tmp_path: Path) -> None:
    """What a stop, a refusal or ``--detach`` says to continue a sweep is the sweep's own
    command (every value), not a run of one value."""
    request = RunRequest.of(model="unet", loss="dice", protocol="tiny", runs_dir=tmp_path)
    plans = sweep_plans(request, parse_vary("aug=none,basic"), Planner())
    said = {p.resume_hint.text() for p in plans}
    assert said == {
        "harness sweep --vary augmentation=none,basic --model unet --loss dice --protocol tiny "
        f"--runs-dir {tmp_path} --resume"
    }
