"""`harness sweep`: one axis varied, the rest fixed, an ablation table next to the leaderboard."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.runs.planning import Planner
from harness.runs.requests import RunRequest
from harness.studies.sweep import parse_vary, sweep_plans


def test_parse_vary_keeps_parameters_with_their_value() -> None:
    axis = parse_vary("loss=bce,dice,combo:dice=0.7,bce=0.3")
    assert axis.name == "loss" and axis.values == ("bce", "dice", "combo:dice=0.7,bce=0.3")
    assert parse_vary("aug=none,basic").name == "augmentation"


def test_every_plan_of_a_sweep_is_continued_by_the_sweep(tmp_path: Path) -> None:
    """What a stop, a refusal or ``--detach`` says to continue a sweep is the sweep's own
    command (every value), not a run of one value."""
    request = RunRequest.of(model="unet", loss="dice", protocol="tiny", runs_dir=tmp_path)
    plans = sweep_plans(request, parse_vary("aug=none,basic"), Planner())
    said = {p.resume_hint.text() for p in plans}
    assert said == {
        "harness sweep --vary aug=none,basic --model unet --loss dice --protocol tiny "
        f"--runs-dir {tmp_path} --leaderboards-dir leaderboards --resume"
    }


@pytest.mark.parametrize("text", ["loss", "colour=a,b", "loss=dice", "loss=dice,dice", "loss=a,:x"])
def test_bad_vary(text: str) -> None:
    with pytest.raises(HarnessError, match="--vary"):
        parse_vary(text)


def test_sweep_writes_an_ablation_table(cli, tmp_path: Path) -> None:
    result = cli(
        "sweep", "--vary", "loss=bce,dice", "--model", "unet", "--protocol", "tiny",
        "--set", "epochs=1", "--runs-dir", tmp_path / "runs",
        "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err
    (table,) = (tmp_path / "boards").glob("*.ablation-loss.md")
    text = table.read_text()
    assert "| Loss | Dice | 95 % CI | n | vs best |" in text
    assert "| bce |" in text and "| dice |" in text and "best" in text
    (main,) = [p for p in (tmp_path / "boards").glob("*.md") if "ablation" not in p.name]
    assert main.read_text().count("| unet · ") == 2 + 2  # two ranked rows, two per-class rows
    assert len(list((tmp_path / "runs").rglob("record.json"))) == 2
