"""``metrics.jsonl`` (``harness.runs.tracking.metrics``): one JSON line per epoch in every run
folder, tracked or not, its keys in a fixed order; a resume keeps the lines up to the
checkpoint's epoch (a cut line and later ones dropped, a missing one taken from the
checkpoint's history); a fresh start empties it; a full disk is one warning, once."""

from __future__ import annotations

import json
from pathlib import Path

from harness.runs.tracking.metrics import METRICS_NAME, MetricsLog, read_metrics
from harness.runs.tracking.tensorboard import TENSORBOARD_DIR
from tests.helpers import fill_up, full_tmpfs


def test_a_run_without_track_writes_a_line_per_epoch_and_no_events(
    cli, plugin: Path, tmp_path: Path
) -> None:
    result = cli(
        "run", "--model", "small-cnn", "--loss", "dice", "--plugin", plugin,
        "--protocol", "tiny", "--set", "epochs=3", "--set", "val_interval=2", "--device", "cpu",
        "--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err
    (metrics,) = (tmp_path / "runs").rglob(METRICS_NAME)
    lines = read_metrics(metrics.parent)  # a run folder reads as its file
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    assert list(lines[0])[:6] == ["epoch", "step", "loss", "lr", "images_per_s", "wall_s"]
    assert "val_mean_dice" not in lines[0] and "val_mean_dice" in lines[1]  # validated: 2, 3
    assert not list((tmp_path / "runs").rglob(TENSORBOARD_DIR))


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def test_a_resume_drops_the_lines_after_the_checkpoint_and_a_cut_line(tmp_path: Path) -> None:
    """Killed after epoch 3's line (and while writing epoch 4's) but before epoch 3's
    checkpoint: the resume from epoch 2 keeps lines 1-2 as they were."""
    path = tmp_path / METRICS_NAME
    lines = [json.dumps({"epoch": e, "step": 8 * e, "loss": 1 / e}) for e in (1, 2, 3)]
    _write(path, [*lines, '{"epoch": 4, "st'])
    state = {"epoch": 2, "step": 16, "history": [{"epoch": 1, "loss": 1.0}, {"epoch": 2}]}
    log = MetricsLog(path, resumed=state)
    assert path.read_text().splitlines() == lines[:2]
    log.epoch_done({"loss": 0.25, "epoch": 3, "lr": 0.1, "step": 24})
    assert read_metrics(path)[-1] == {"epoch": 3, "step": 24, "loss": 0.25, "lr": 0.1}
    assert [line["epoch"] for line in read_metrics(path)] == [1, 2, 3]


def test_an_epoch_the_file_lacks_comes_from_the_checkpoints_history(tmp_path: Path) -> None:
    path = tmp_path / METRICS_NAME
    _write(path, [json.dumps({"epoch": 1, "step": 8, "loss": 1.0})])
    history = [{"epoch": 1, "loss": 1.5, "lr": 0.1}, {"epoch": 2, "loss": 0.5, "lr": 0.2}]
    MetricsLog(path, resumed={"epoch": 2, "step": 16, "history": history})
    assert read_metrics(path) == [
        {"epoch": 1, "step": 8, "loss": 1.0},  # the file's own line stays
        {"epoch": 2, "loss": 0.5, "lr": 0.2},
    ]


def test_a_fresh_start_empties_the_file(tmp_path: Path) -> None:
    path = tmp_path / METRICS_NAME
    _write(path, [json.dumps({"epoch": 1})])
    MetricsLog(path, resumed=None)
    assert path.read_text() == ""


def test_on_a_full_disk_metrics_lines_are_one_warning_and_the_earlier_lines_stay(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "disk"
    with full_tmpfs(folder) as fill:
        fill.unlink()
        said: list[str] = []
        log = MetricsLog(folder / METRICS_NAME, warn=said.append)
        log.epoch_done({"epoch": 1, "step": 8, "loss": 1.0})
        fill_up(fill)
        long = {"step": 16, "loss": 0.5, "pad": "x" * 10_000}  # past the first line's page
        log.epoch_done({"epoch": 2, **long})
        log.epoch_done({"epoch": 3, **long})
        assert read_metrics(folder / METRICS_NAME) == [{"epoch": 1, "step": 8, "loss": 1.0}]
    (line,) = said
    assert line.startswith(f"warning: {folder}: the disk is full (No space left on device)")


def test_lines_keep_their_keys_in_order_and_a_missing_file_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / METRICS_NAME
    assert read_metrics(path) == []
    log = MetricsLog(path)
    log.epoch_done(
        {"val_mean_dice": 0.5, "extra": 1, "lr": 0.1, "loss": 0.3, "step": 2, "epoch": 1}
    )
    (line,) = path.read_text().splitlines()
    assert list(json.loads(line)) == ["epoch", "step", "loss", "lr", "val_mean_dice", "extra"]
