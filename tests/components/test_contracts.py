"""A run and ``check-plugin`` judge a component by the same contract.

``harness.components.contracts`` holds one check per rule of ``hookspecs``; training (on
its first batch), ``harness predict`` and the conformance checks all call it. Here each
edge component (a loss of shape ``(1,)``, a detached loss, a scheduler without
``get_last_lr()``, a model with the wrong number of channels, and two that keep the
contract: no augmentation at all and a plain loss) goes through both paths, a ``tiny``
run with ``--plugin FILE`` and ``check_component``, and the two must agree: both accept,
or both reject in the same words, one line naming the component and its plugin.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from harness.components import contracts
from harness.components.conformance import check_component
from harness.components.registry import Registry
from harness.errors import HarnessError

PLUGIN_NAME = "edge_plugins.py"
PLUGIN = '''
import torch
import torch.nn.functional as F

from harness import hookimpl


class Tiny(torch.nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def tiny(*, num_classes, in_channels, encoder=None):
    return Tiny(in_channels, num_classes)


def wrong_channels(*, num_classes, in_channels, encoder=None):
    return Tiny(in_channels, num_classes - 1)


def plain(**params):
    return lambda logits, target: F.binary_cross_entropy_with_logits(logits, target)


def shape_one(**params):
    return lambda logits, target: F.binary_cross_entropy_with_logits(logits, target).reshape(1)


def detached(**params):
    return lambda logits, target: F.binary_cross_entropy_with_logits(logits, target).detach()


class NoLastLr:
    """Steps and saves, but is no LR scheduler: it cannot say its learning rate."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.count = 0

    def step(self):
        self.count += 1

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


@hookimpl
def harness_models():
    return {"edge-tiny": tiny, "wrong-channels": wrong_channels}


@hookimpl
def harness_losses():
    return {"edge-plain": plain, "shape-one": shape_one, "detached": detached}


@hookimpl
def harness_schedulers():
    return {"no-last-lr": lambda optimizer, *, total_steps, warmup_steps: NoLastLr(optimizer)}


@hookimpl
def harness_augmentations():
    return {"nothing": lambda *, image_size: None}
'''


@dataclass(frozen=True)
class Edge:
    kind: str
    name: str
    option: str
    accepted: bool


EDGES = [
    Edge("losses", "shape-one", "--loss", accepted=False),
    Edge("losses", "detached", "--loss", accepted=False),
    Edge("schedulers", "no-last-lr", "--scheduler", accepted=False),
    Edge("models", "wrong-channels", "--model", accepted=False),
    Edge("augmentations", "nothing", "--augmentation", accepted=True),
    Edge("losses", "edge-plain", "--loss", accepted=True),
]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("edge") / PLUGIN_NAME
    path.write_text(PLUGIN)
    return path


def _shapeless(text: str) -> str:
    """The message with every shape written ``(...)``: a run's batch is not the check's."""
    return re.sub(r"\(\d+(, \d+)*,?\)", "(...)", text)


def _run(cli, plugin: Path, tmp_path: Path, edge: Edge):
    chosen = {"--model": "edge-tiny", "--loss": "edge-plain", edge.option: edge.name}
    args = [part for pair in chosen.items() for part in pair]
    return cli(
        "run", *args, "--protocol", "tiny", "--set", "epochs=1", "--plugin", plugin,
        "--device", "cpu", "--runs-dir", tmp_path / "runs",
        "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip


@pytest.mark.parametrize("edge", EDGES, ids=[e.name for e in EDGES])
def test_a_run_and_check_plugin_agree(cli, plugin: Path, tmp_path: Path, edge: Edge) -> None:
    report = check_component(Registry.load([str(plugin)]), edge.kind, edge.name)
    result = _run(cli, plugin, tmp_path, edge)
    run_accepted = result.code == 0
    assert run_accepted == report.ok, (result.err[-800:], report.checks)
    assert report.ok is edge.accepted, report.checks
    if edge.accepted:
        (record_path,) = (tmp_path / "runs").rglob("record.json")
        assert json.loads(record_path.read_text())["status"] == "succeeded"
        return
    lines = [line for line in result.err.splitlines() if line.startswith("harness:")]
    assert result.code == 2 and len(lines) == 1, result.err
    assert "Traceback" not in result.err + result.out
    message = lines[0].removeprefix("harness: error: ")
    assert message.startswith(f"{contracts.SINGULAR[edge.kind]} '{edge.name}' from {PLUGIN_NAME}")
    details = {_shapeless(check.detail) for check in report.failures}
    assert _shapeless(message) in details, (message, details)


def test_each_rule_names_the_component_and_its_plugin(plugin: Path) -> None:
    registry = Registry.load([str(plugin)])
    loss = registry.get("losses", "shape-one")
    with pytest.raises(HarnessError, match=r"^loss 'shape-one' from edge_plugins.py \(file\) "):
        contracts.check_loss_value(torch.zeros(1), loss)
    contracts.check_loss_value(torch.zeros(()), loss)
    with pytest.raises(HarnessError, match="does not require grad"):
        contracts.check_loss_differentiable(torch.zeros(()), loss)
    model = registry.get("models", "wrong-channels")
    logits = torch.zeros(1, 29, 8, 8, dtype=torch.long)
    with pytest.raises(HarnessError, match=r"returned dtype torch.int64"):
        contracts.check_model_output(logits, torch.zeros(1, 1, 8, 8), model)


def test_predict_builds_the_model_through_the_contract(cli, plugin: Path, tmp_path: Path) -> None:
    from harness.inference.predict import load_run

    result = _run(cli, plugin, tmp_path, Edge("losses", "edge-plain", "--loss", accepted=True))
    assert result.code == 0, result.err[-800:]
    (record_path,) = (tmp_path / "runs").rglob("record.json")
    assert load_run(record_path.parent, plugins=[str(plugin)]).model_name == "edge-tiny"
    broken = tmp_path / "broken_edge.py"  # the same model name, now a factory that raises
    broken.write_text(
        "from harness import hookimpl\n\n\n"
        "def boom(**params):\n"
        "    raise RuntimeError('weights server unreachable')\n\n\n"
        "@hookimpl\n"
        "def harness_models():\n"
        "    return {'edge-tiny': boom}\n"
    )
    with pytest.raises(HarnessError) as info:
        load_run(record_path.parent, plugins=[str(broken)])
    assert str(info.value).startswith(
        "model 'edge-tiny' from broken_edge.py (file): its factory raised RuntimeError: "
        "weights server unreachable"
    )
    assert "\n" not in str(info.value)
