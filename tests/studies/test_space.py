"""The space an entry is tuned over (``harness.studies.space``): its components' declarations,
the protocol's space for the rest, less what the protocol fixes and the entry sets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness import protocol as protocols
from harness.components.entry import Entry, parse_component
from harness.components.registry import Registry
from harness.errors import HarnessError
from harness.protocol import Range
from harness.runs.requests import RunRequest
from harness.studies.space import Dimension, EntrySpace, entry_space
from tests.helpers import spaced_plugin


def _entry(optimizer: str, model: str = "unet", scheduler: str = "warmup-cosine") -> Entry:
    texts = (model, "dice", optimizer, scheduler, "none")
    return Entry(*(parse_component(t, "--x") for t in texts))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return Registry.load([str(spaced_plugin(tmp_path_factory.mktemp("space")))])


def test_without_declarations_the_protocols_space_is_the_entrys(registry: Registry) -> None:
    proto = protocols.load("synthetic")
    space = entry_space(_entry("damped-sgd"), proto, registry)
    assert [d.name for d in space.dimensions] == ["lr", "optimizer.dampening", "weight_decay"]
    plain = dataclasses.replace(
        proto, tuning=dataclasses.replace(proto.tuning, space=(("grad_clip", Range(0.1, 1.0)),))
    )
    flat = entry_space(_entry("damped-sgd"), plain, registry)
    assert [d.name for d in flat.dimensions] == ["grad_clip", "lr", "optimizer.dampening"]


def test_a_declared_range_replaces_the_protocols_and_an_own_parameter_is_namespaced(
    registry: Registry,
) -> None:
    proto = protocols.load("synthetic")  # lr [1e-4, 0.3], weight_decay [1e-6, 1e-2]
    space = entry_space(_entry("sgd"), proto, registry)
    assert space.dimensions == (
        Dimension("lr", Range(1e-3, 1.0, True), "sgd", proto.lr),
        Dimension("optimizer.momentum", Range(0.8, 0.99, False), "sgd", 0.9),
        Dimension("weight_decay", Range(1e-6, 1e-2, True), "protocol", proto.weight_decay),
    )
    assert space.own and space.words() == "own space: lr, optimizer.momentum from sgd"
    assert space.defaults == {"lr": 3e-3, "optimizer.momentum": 0.9, "weight_decay": 1e-4}
    assert space.to_dict()["optimizer.momentum"] == {
        "low": 0.8, "high": 0.99, "log": False, "from": "sgd"
    }  # fmt: skip
    momentum = space.dimensions[1]
    assert momentum.field == "optimizer" and momentum.param == "momentum"
    assert space.dimensions[0].field is None and space.dimensions[0].param == "lr"


def test_the_protocol_may_fix_a_field_and_the_entry_its_parameters(registry: Registry) -> None:
    proto = protocols.load("synthetic")
    fixed = dataclasses.replace(proto, tuning=dataclasses.replace(proto.tuning, fixed=("lr",)))
    space = entry_space(_entry("sgd:momentum=0.95"), fixed, registry)
    assert [d.name for d in space.dimensions] == ["weight_decay"]
    assert not space.own and space.words() == ""
    nothing = dataclasses.replace(
        proto, tuning=dataclasses.replace(proto.tuning, fixed=("lr", "weight_decay"))
    )
    with pytest.raises(HarnessError, match="nothing is left to tune"):
        entry_space(_entry("adam"), nothing, registry)


def test_two_components_declaring_one_field_is_one_line(tmp_path: Path) -> None:
    plugin = tmp_path / "warm.py"
    plugin.write_text(
        "from harness import hookimpl, tunable\n"
        "from harness_plugins.schedulers import flat\n"
        "@hookimpl\n"
        "def harness_schedulers():\n"
        "    return {'lr-flat': tunable(lr=(1e-4, 1e-2, 'log'))(lambda o, *, total_steps, "
        "warmup_steps: flat(o, total_steps=total_steps, warmup_steps=warmup_steps))}\n"
    )
    registry = Registry.load([str(plugin)])
    with pytest.raises(HarnessError) as info:
        entry_space(_entry("sgd", scheduler="lr-flat"), protocols.load("tiny"), registry)
    assert str(info.value).startswith(
        "lr is declared by both optimizer 'sgd' and scheduler 'lr-flat'"
    )


def test_a_bad_declaration_stops_the_space(tmp_path: Path) -> None:
    registry = Registry.load([str(spaced_plugin(tmp_path, bad=True))])
    with pytest.raises(HarnessError, match="declares a bad tuning space"):
        entry_space(_entry("damped-sgd"), protocols.load("tiny"), registry)


def test_values_become_hparams_and_component_parameters(registry: Registry) -> None:
    space = entry_space(_entry("sgd:nesterov=true"), protocols.load("tiny"), registry)
    values = space.rounded({"lr": 0.0123456789, "optimizer.momentum": 0.912345678})
    assert values == {"lr": 0.0123456789, "optimizer.momentum": 0.9123}  # own: 4 digits
    base = RunRequest.of(model="unet", loss="dice", optimizer="sgd:nesterov=true")
    request = space.request(base, _entry("sgd:nesterov=true"), {**values, "weight_decay": 1e-5})
    assert request.entry.hparams == (("lr", 0.0123456789), ("weight_decay", 1e-5))
    assert request.entry.optimizer == "sgd:momentum=0.9123,nesterov=true"
    again = parse_component(request.entry.optimizer, "--optimizer")
    assert again.kwargs == {"momentum": 0.9123, "nesterov": True}  # read back as it trains


def test_an_empty_space_object_has_no_own_ranges() -> None:
    space = EntrySpace((Dimension("lr", Range(1e-4, 1e-1), "protocol", 1e-3),))
    assert not space.own and space.ranges == (("lr", Range(1e-4, 1e-1)),)
    assert space.hparams({"lr": 0.01}) == (("lr", 0.01),)
