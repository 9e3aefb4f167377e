"""A component's own parameters, read from its factory's signature without calling it
(``harness.components.parameters``), and the one-line refusals built on them
(``Registered.check_params``, ``Registry.check``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest

from harness.components.entry import parse_component
from harness.components.kinds import BY_PLURAL
from harness.components.parameters import REQUIRED, Parameter, Parameters, parameters
from harness.components.registry import Registry
from harness.errors import HarnessError

LOSSES, OPTIMIZERS, MODELS = BY_PLURAL["losses"], BY_PLURAL["optimizers"], BY_PLURAL["models"]


def loss(*, alpha: float = 0.5, steps: int = 3, hard: bool = False, name: str | None = None):
    return alpha, steps, hard, name


def optimizer(params, *, lr, weight_decay, momentum: float = 0.9, nesterov=False):
    return params, lr, weight_decay, momentum, nesterov


def model(*, num_classes: int, in_channels: int, encoder: str | None, width: int, **params: Any):
    return num_classes, in_channels, encoder, width, params


def typed(*, rate: float = 1.0, limit: Optional[int] = None, mode: str = "a"):  # noqa: UP045
    """Real annotation objects (no ``from __future__ import annotations`` in a plugin)."""
    return rate, limit, mode


typed.__annotations__ = {"rate": float, "limit": Optional[int], "mode": str}  # noqa: UP045


def test_a_signature_gives_names_types_and_defaults() -> None:
    found = parameters(loss, LOSSES)
    assert found.own == (
        Parameter("alpha", "float", 0.5),
        Parameter("steps", "int", 3),
        Parameter("hard", "bool", False),
        Parameter("name", "str | None", None),
    )
    assert not found.open and found.readable


def test_the_harnesss_own_arguments_are_left_out() -> None:
    assert parameters(optimizer, OPTIMIZERS).names() == ["momentum", "nesterov"]
    found = parameters(model, MODELS)
    assert found.names() == ["width"] and found.open
    assert found.own[0].required and found.own[0].default is REQUIRED


def test_real_annotation_objects_read_as_text() -> None:
    assert [(p.annotation, p.types) for p in parameters(typed, LOSSES).own] == [
        ("float", frozenset({float})),
        ("Optional[int]", frozenset({int, type(None)})),
        ("str", frozenset({str})),
    ]


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("alpha", 0.2, None),
        ("alpha", 1, None),  # an int is a fine float
        ("alpha", "abc", "alpha=abc is a str, not a float"),
        ("alpha", True, "alpha=true is a bool, not a float"),
        ("steps", 4, None),
        ("steps", 2.5, "steps=2.5 is a float, not an int"),
        ("hard", True, None),
        ("hard", 1, "hard=1 is an int, not a bool"),
        ("name", "x", None),
        ("name", 3, "name=3 is an int, not a str | None"),
        ("alhpa", 0.2, "no parameter 'alhpa'; did you mean alpha? (it takes alpha, steps, "),
        ("zzz", 1, "no parameter 'zzz' (it takes alpha, steps, hard, name)"),
    ],
)  # fmt: skip
def test_what_the_signature_refuses(key: str, value: Any, problem: str | None) -> None:
    found = parameters(loss, LOSSES).problem(key, value)
    assert found == problem or (problem is not None and found.startswith(problem)), found


def test_an_open_factory_passes_unknown_names_on_but_checks_its_own() -> None:
    found = parameters(model, MODELS)
    assert found.problem("decoder_channels", 16) is None
    assert found.problem("width", "wide").startswith("width=wide is a str, not an int")
    assert "harness's own argument" in found.problem("encoder", "resnet18")


def test_unannotated_or_unusual_types_are_not_checked() -> None:
    assert parameters(optimizer, OPTIMIZERS).problem("nesterov", "maybe") is None
    odd = Parameters((Parameter("sizes", "list[int]", ()),))
    assert odd.problem("sizes", "anything") is None


def test_an_unreadable_factory_is_not_checked() -> None:
    found = parameters(dict, LOSSES)  # a builtin without a signature to read
    assert not found.readable and found.problem("anything", 1) is None
    assert "no parameter 'x' (it takes none)" in parameters(object, LOSSES).problem("x", 1)


def test_registry_check_is_one_line_naming_the_component_and_harness_show() -> None:
    registry = Registry.load()
    with pytest.raises(HarnessError) as caught:
        registry.check("losses", parse_component("dice:smooth=abc", "--loss"))
    message = str(caught.value)
    assert message.startswith("loss 'dice' from builtin-losses (segmentation-harness ")
    assert "smooth=abc is a str, not a float" in message
    assert message.endswith("; see `harness show losses dice`") and "\n" not in message
    assert registry.check("losses", parse_component("combo:dice=1", "--loss")).name == "combo"
    with pytest.raises(HarnessError, match="unknown loss 'dcie'; did you mean: dice"):
        registry.check("losses", parse_component("dcie", "--loss"))


def test_every_builtin_signature_reads(tmp_path: Path) -> None:
    registry = Registry.load()
    for component in registry.all():
        own = component.parameters()
        assert own.readable, component.name
        assert not set(own.names()) & set(BY_PLURAL[component.kind].contract), component.name
        for p in own.own:  # every default fits its own annotation
            if not p.required and p.default is not None and p.types is not None:
                assert own.problem(p.name, p.default) is None, (component.name, p)
