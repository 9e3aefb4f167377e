"""``harness sweep`` (``harness.cli.sweep``): one axis varied, the rest fixed; the ablation
table beside the leaderboard, printed and named; ``--dry-run`` lists every value's runs and
writes nothing; ``--model`` and ``--loss`` have the sweep's own defaults."""

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
    assert "| Loss | Dice | 95 % CI | n | vs best |" in text
    assert "| bce |" in text and "| dice |" in text and "best" in text
    (main,) = [p for p in (tmp_path / "boards").glob("*.md") if "ablation" not in p.name]
    assert main.read_text().count("| unet · ") == 2 + 2  # two ranked rows, two per-class rows
    assert len(list((tmp_path / "runs").rglob("record.json"))) == 2
    assert "| Loss | Dice | 95 % CI | n | vs best |" in result.out  # the table printed
    assert result.out.strip().endswith(f"wrote {table}")
    # Its design is kept beside the runs: the table comes back from them into an empty folder,
    # and the index lists it as the sweep's did.
    (design,) = (tmp_path / "runs").glob("*/ablations/loss.json")
    again = cli(
        "leaderboard", "--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "new"
    )
    assert again.code == 0, again.err
    assert (tmp_path / "new" / table.name).read_text() == text
    assert (tmp_path / "new" / "index.html").read_text() == (
        tmp_path / "boards" / "index.html"
    ).read_text()
    # The same command again: both runs already succeeded, so nothing trains; one line each.
    rerun = cli(
        "sweep", "--vary", "loss=bce,dice", "--model", "unet", "--protocol", "tiny",
        "--set", "epochs=1", "--runs-dir", tmp_path / "runs",
        "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert rerun.code == 0 and rerun.err.count("already succeeded") == 2, rerun.err
    assert table.read_text() == text


def test_a_dry_run_lists_every_values_runs_and_writes_nothing(cli, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = cli(
        "sweep", "--vary", "loss=bce,dice", "--protocol", "tiny", "--seeds", "2",
        "--dry-run", "--runs-dir", runs, "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "4 of 4 runs to train:"
    trained = [line.split(" (")[0].strip() for line in lines[1:5]]
    assert trained == [
        f"train  unetpp · {loss} · adamw · warmup-cosine · none seed {seed}"  # --model unetpp
        for loss in ("bce", "dice")
        for seed in (0, 1)
    ]
    assert lines[5].startswith("estimate: ")
    assert not runs.exists() and not (tmp_path / "boards").exists()
