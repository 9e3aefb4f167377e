"""The trainer's loop (``harness.engine.trainer``): what it reports to its observer, and
that a stop at an epoch's end, resumed, continues where it stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from harness import protocol as protocols
from harness.classes import CLASSES
from harness.components.entry import Entry, parse_component
from harness.components.registry import Registry
from harness.data.layout import list_images, split
from harness.data.sources import synthetic_dataset
from harness.engine import checkpoint
from harness.engine.control import Interrupted
from harness.engine.trainer import Checkpointing, Execution, Recipe, RunSpec, TrainResult, train
from tests.test_resume import PLUGIN

CPU = torch.device("cpu")


class Recorder:
    """A ``TrainObserver`` that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def run_started(self, description: str, total_steps: int, completed: int) -> None:
        self.calls.append(("run_started", (description, total_steps, completed)))

    def step_done(self, step: int, epoch: int, epochs: int, loss: float) -> None:
        self.calls.append(("step_done", (step, epoch, epochs)))

    def validating(self, epoch: int, epochs: int) -> None:
        self.calls.append(("validating", (epoch, epochs)))

    def validated(self, epoch: int, step: int, model: torch.nn.Module) -> None:
        self.calls.append(("validated", (epoch, step)))

    def epoch_done(self, metrics: dict[str, Any]) -> None:
        self.calls.append(("epoch_done", metrics))

    def message(self, text: str) -> None:
        self.calls.append(("message", text))

    def run_ended(self) -> None:
        self.calls.append(("run_ended", None))

    def named(self, name: str) -> list[Any]:
        return [args for kind, args in self.calls if kind == name]


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    plugin = tmp_path_factory.mktemp("plugin") / "small_cnn.py"
    plugin.write_text(PLUGIN)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        proto = protocols.load("tiny").derive(["epochs=3", "val_interval=2"])
        root = synthetic_dataset(proto.synth_ids, proto.synth_size, proto.synth_seed)
    train_images, val_images = split(list_images(root, "train"), proto.folds, proto.fold)
    components = {
        "model": "small-cnn",
        "loss": "dice",
        "optimizer": proto.optimizer,
        "scheduler": proto.scheduler,
        "augmentation": proto.augmentation,
    }
    entry = Entry(**{k: parse_component(v, k) for k, v in components.items()})
    recipe = Recipe(proto, entry, Registry.load([str(plugin)]))
    return {
        "run": RunSpec(recipe, 0, train_images, val_images),
        "execution": Execution(CPU),
    }


def test_the_observer_hears_the_protocol(setting: dict[str, Any]) -> None:
    heard = Recorder()
    result = train(**setting, observer=heard)
    assert isinstance(result, TrainResult)
    steps = -(-len(setting["run"].train_images) // setting["run"].recipe.protocol.batch_size)
    assert heard.calls[0] == ("run_started", ("seed 0", 3 * steps, 0))
    assert heard.calls[-1] == ("run_ended", None)
    # On a CPU every step's loss is read back, and reported.
    assert heard.named("step_done") == [
        (epoch * steps + i + 1, epoch + 1, 3) for epoch in range(3) for i in range(steps)
    ]
    assert heard.named("validating") == [(2, 3), (3, 3)]  # every 2nd epoch, and the last
    metrics = heard.named("epoch_done")
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert [m["step"] for m in metrics] == [steps, 2 * steps, 3 * steps]
    assert [{k: m[k] for k in ("epoch", "loss", "lr")} for m in metrics] == [
        {k: h[k] for k in ("epoch", "loss", "lr")} for h in result.history
    ]
    assert "val_mean_dice" not in metrics[0] and "val_per_class_dice" not in metrics[0]
    assert metrics[2]["val_mean_dice"] == result.mean_dice
    assert metrics[2]["val_per_class_dice"] == result.per_class_dice
    assert list(metrics[2]["val_per_class_dice"]) == list(CLASSES)
    assert heard.named("message") == []


def test_a_stop_at_an_epochs_end_resumes_from_the_next(
    setting: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C noticed at the end of epoch 1 saves it; the resumed run starts at epoch 2
    (no step trained twice) and ends like a run left alone."""
    from harness.engine import control

    heard = Recorder()
    original = control.StopAgreement.agreed

    def agreed(self: control.StopAgreement, flag: bool) -> bool:
        """As if Ctrl-C had been pressed during epoch 1's last step."""
        return original(self, flag or len(heard.named("epoch_done")) == 1)

    monkeypatch.setattr(control.StopAgreement, "agreed", agreed)
    with pytest.raises(Interrupted) as stopped:
        train(**setting, observer=heard, checkpointing=Checkpointing(tmp_path))
    assert stopped.value.where == "the end of epoch 1"
    assert stopped.value.checkpoint == checkpoint.paths(tmp_path, "last")[0]
    assert heard.calls[-1] == ("run_ended", None)
    monkeypatch.undo()

    resumed_heard = Recorder()
    last = checkpoint.load(tmp_path)
    resumed = train(
        **setting, observer=resumed_heard, checkpointing=Checkpointing(tmp_path, resume_from=last)
    )
    steps = -(-len(setting["run"].train_images) // setting["run"].recipe.protocol.batch_size)
    assert resumed_heard.calls[0] == ("run_started", ("seed 0", 3 * steps, steps))
    assert resumed_heard.named("step_done")[0][:2] == (steps + 1, 2)
    alone = train(**setting)
    assert resumed.history == alone.history
    assert resumed.mean_dice == alone.mean_dice
