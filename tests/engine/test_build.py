"""What a run trains with (``harness.engine.build``): the entry's components built from their
plugins under the protocol, seeded, on the device, with the training loader and a step that
checks the plugin contracts on its first batch."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import torch

from harness.engine.build import Execution, Setup, build_setup, make_train_step
from harness.engine.device import Placement
from harness.engine.distributed import World
from harness.errors import HarnessError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(setting: dict[str, Any]) -> Setup:
    return build_setup(setting["run"], setting["execution"])


def test_execution_defaults_to_one_process_whole_batches_and_no_compile() -> None:
    execution = Execution(torch.device("cpu"))
    assert execution.world == World() and not execution.world.active
    assert execution.micro_batch is None and not execution.compile
    assert execution.precision is None


def test_the_setup_is_the_protocols(setting: dict[str, Any], setup: Setup) -> None:
    run = setting["run"]
    protocol = run.recipe.protocol
    assert setup.protocol is protocol and setup.entry is run.recipe.entry and setup.seed == 0
    assert setup.steps_per_epoch == math.ceil(len(run.train_images) / protocol.batch_size)
    assert len(setup.loader) == setup.steps_per_epoch
    assert len(setup.train_set) == len(run.train_images)
    assert len(setup.val_set) == len(run.val_images)
    assert setup.train_set.augment is setup.augment
    assert setup.parameters == sum(p.numel() for p in setup.model.parameters())
    assert all(p.device.type == "cpu" for p in setup.model.parameters())
    assert setup.step.model is setup.model  # one process, not compiled: nothing wraps it
    assert setup.step.placement == Placement.of(protocol, torch.device("cpu"))
    assert setup.step.grad_clip == protocol.grad_clip and setup.step.micro_batch is None
    trained = {id(p) for group in setup.step.optimizer.param_groups for p in group["params"]}
    assert trained == {id(p) for p in setup.model.parameters() if p.requires_grad}


def _weights(setup: Setup) -> list[torch.Tensor]:
    return [t.detach().clone() for t in setup.model.state_dict().values()]


def test_the_seed_decides_the_weights_and_the_batches(
    setting: dict[str, Any], setup: Setup
) -> None:
    again = build_setup(setting["run"], setting["execution"])
    assert all(torch.equal(a, b) for a, b in zip(_weights(setup), _weights(again), strict=True))
    other = build_setup(dataclasses.replace(setting["run"], seed=1), setting["execution"])
    assert not all(torch.equal(a, b) for a, b in zip(_weights(setup), _weights(other), strict=True))
    one, two = (build_setup(setting["run"], setting["execution"]) for _ in range(2))
    assert torch.equal(next(iter(one.loader))[0], next(iter(two.loader))[0])


def test_the_step_checks_the_loss_contract_naming_the_entrys_plugin(
    setting: dict[str, Any],
) -> None:
    recipe = setting["run"].recipe
    model = torch.nn.Conv2d(1, 29, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def per_pixel(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (logits - target).abs()

    step = make_train_step(model, per_pixel, optimizer, None, recipe, torch.device("cpu"))
    with pytest.raises(HarnessError) as caught:
        step(torch.zeros(2, 1, 8, 8), torch.zeros(2, 29, 8, 8))
    line = str(caught.value)
    assert line.startswith("loss 'dice' from builtin-losses (segmentation-harness ")
    assert "returned shape (2, 29, 8, 8), expected a 0-dim tensor" in line
