"""What every tracker shares (``harness.runs.tracking``): several at once, a missing or
unknown one is one line before any run folder exists, ``--track``'s help made from the
registry, and what a Ray worker is given to track from there. (A tracker that fails never
fails the run: tests/runs/tracking/test_remote.py.)"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from harness.runs.requests import RunRequest, resume_command
from harness.runs.tracking import (
    TRACKERS,
    check_track,
    track_help,
    tracker,
    tracker_names,
    worker_env,
)
from harness.runs.tracking.about import STATE_NAME, TRACKED_RECORD
from harness.runs.tracking.tensorboard import TENSORBOARD_DIR
from tests.helpers import record_of


def _args(plugin: Path, tmp_path: Path, track: str) -> list[str]:
    """tiny, 2 epochs of 2 steps."""
    return [
        "run", "--model", "small-cnn", "--loss", "dice", "--plugin", str(plugin),
        "--protocol", "tiny", "--set", "epochs=2", "--device", "cpu", "--track", track,
        "--runs-dir", str(tmp_path / "runs"), "--leaderboards-dir", str(tmp_path / "boards"),
    ]  # fmt: skip


def test_several_trackers_at_once_each_get_the_run(
    cli, plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tensorboard, mlflow (no server given: the local store in the runs folder) and wandb
    (offline) from one ``--track``."""
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HARNESS_TRACK_WEIGHTS", "1")  # the final weights kept too
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))
    result = cli(*_args(plugin, tmp_path, "tensorboard,mlflow,wandb"))
    assert result.code == 0, result.err
    assert "tracking stopped" not in result.out + result.err
    runs = tmp_path / "runs"
    record = record_of(runs)  # the trackers' copies are not named record.json
    (folder,) = (p.parent for p in runs.rglob("record.json"))
    assert list((folder / TENSORBOARD_DIR).glob("events.out.tfevents.*"))
    state = json.loads((folder / STATE_NAME).read_text())
    assert set(state) == {"mlflow", "wandb"}
    assert list(folder.glob(f"wandb/offline-run-*-{state['wandb']['id']}"))

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{runs / 'mlflow.db'}")
    run = client.get_run(state["mlflow"]["run_id"])
    assert (
        run.info.experiment_id
        == client.get_experiment_by_name(record["benchmark"]["id"]).experiment_id
    )
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert steps == [1, 2, 3, 4]
    assert run.data.params["protocol.hash"] == record["benchmark"]["protocol"]["hash"]
    artifacts = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {TRACKED_RECORD, "weights-final.safetensors"} <= artifacts
    (wandb_files,) = folder.glob("wandb/offline-run-*/files")
    assert (wandb_files / "weights-final.safetensors").is_file()
    assert (runs / "mlartifacts").is_dir()  # the local store keeps its files in the runs folder


@pytest.mark.parametrize(
    "name, label, module",
    [
        ("tensorboard", "TensorBoard", "torch.utils.tensorboard"),
        ("mlflow", "MLflow", "mlflow"),
        ("wandb", "W&B", "wandb"),
    ],
)
def test_a_tracker_not_installed_is_one_line_before_any_run_folder(
    cli,
    plugin: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    label: str,
    module: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # its import fails
    result = cli(*_args(plugin, tmp_path, f"tensorboard,{name}"))
    assert result.code == 2
    assert result.err.strip() == (
        f"harness: error: --track {name}: {label} is not installed; install it with "
        f"`pip install {name}` (or `pip install 'segmentation-harness[track]'`)"
    )
    assert not (tmp_path / "runs").exists()


def test_track_is_read_as_its_trackers_and_written_back_as_given() -> None:
    request = RunRequest.from_options(model="unet", loss="dice", track="tensorboard, MLflow,")
    assert request.launch.track == ("tensorboard", "mlflow")
    args = shlex.split(resume_command(request))
    assert args[args.index("--track") + 1] == "tensorboard,mlflow"
    assert tracker_names("wandb,wandb") == ("wandb",) and tracker_names(None) == ()
    check_track(("tensorboard", "mlflow", "wandb"))  # all installed here


def test_a_ray_worker_gets_the_trackers_settings_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://10.0.0.1:5000")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HARNESS_TRACK_WEIGHTS", "1")
    monkeypatch.setenv("SOMETHING_ELSE", "x")
    env = worker_env()
    assert env["MLFLOW_TRACKING_URI"] == "http://10.0.0.1:5000"
    assert env["WANDB_MODE"] == "offline" and env["HARNESS_TRACK_WEIGHTS"] == "1"
    assert "SOMETHING_ELSE" not in env


# -- a tracker that fails -------------------------------------------------------------------


def test_an_unknown_tracker_is_one_line_naming_every_one(cli, plugin: Path, tmp_path: Path) -> None:
    result = cli(*_args(plugin, tmp_path, "tensorboard,comet"))
    assert result.code == 2
    assert result.err.strip() == (
        "harness: error: --track 'comet': choose from tensorboard, mlflow, wandb "
        "(several at once: --track tensorboard,mlflow)"
    )
    assert not (tmp_path / "runs").exists()


def test_the_help_of_track_names_every_tracker_and_its_package() -> None:
    said = track_help()
    for found in TRACKERS:
        assert found.name in said and found.package in said
    assert "tensorboard (event files in the run folder)" in said
    assert tracker("mlflow").label == "MLflow"
