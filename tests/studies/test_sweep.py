"""`harness sweep`: one axis varied, the rest fixed, an ablation table next to the leaderboard."""

from __future__ import annotations

from pathlib import Path


def test_sweep_writes_an_ablation_table(cli, tmp_path: Path) -> None:
    result = cli(
        "sweep", "--vary", "loss=bce,dice", "--model", "unet", "--protocol", "tiny",
        "--set", "epochs=1", "--runs-dir", tmp_path / "runs",
        "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err
    (table,) = (tmp_path / "boards").glob("*.ablation-loss.md")
    text = table.read_text()
    assert "| Loss | Dice | ± | n | vs best |" in text
    assert "| bce |" in text and "| dice |" in text and "best" in text
    (main,) = [p for p in (tmp_path / "boards").glob("*.md") if "ablation" not in p.name]
    assert main.read_text().count("| unet · ") == 2 + 2  # two ranked rows, two per-class rows
    assert len(list((tmp_path / "runs").rglob("record.json"))) == 2
