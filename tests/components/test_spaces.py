"""Declared tuning spaces (``harness.components.spaces``): ``harness.tunable`` marks a factory,
``declared`` reads and checks it without calling it, and a bad declaration is one line naming
the component and what is wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import harness
from harness.components import spaces
from harness.components.conformance import check_component
from harness.components.registry import KINDS, Registry
from harness.errors import HarnessError
from harness.protocol import TUNABLE, Range
from tests.helpers import spaced_plugin

#: The built-in optimizers' declared spaces (plugins/harness_plugins/optimizers.py).
BUILTIN_SPACES = {
    "sgd": {"lr": "[0.001, 1] log", "momentum": "[0.8, 0.99]"},
    "adam": {"lr": "[0.0001, 0.03] log"},
    "adamw": {"lr": "[0.0001, 0.03] log", "weight_decay": "[1e-05, 0.1] log"},
    "radam": {"lr": "[0.0001, 0.03] log", "weight_decay": "[1e-05, 0.1] log"},
    "lion": {"lr": "[1e-05, 0.01] log", "weight_decay": "[0.0001, 1] log"},
    "muon": {"lr": "[0.0001, 0.03] log", "momentum": "[0.85, 0.98]"},
}


def _registry(folder: Path, source: str) -> Registry:
    path = folder / "opt_plugin.py"
    path.write_text(textwrap.dedent(source))
    return Registry.load([str(path)], entry_points=False)


def _optimizer(folder: Path, declaration: str, signature: str = "dampening: float = 0.1") -> str:
    return f"""
    import torch
    from harness import hookimpl, tunable

    @tunable({declaration})
    def opt(params, *, lr, weight_decay, {signature}):
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)

    @hookimpl
    def harness_optimizers():
        return {{"opt": opt}}
    """


def test_tunable_marks_the_factory_and_returns_it() -> None:
    def factory(params, *, lr, weight_decay, beta: float = 0.5):
        return None

    marked = harness.tunable(lr=(1e-4, 1e-2, "log"), beta=(0.1, 0.9))(factory)
    assert marked is factory
    assert factory.tuning_space == {"lr": (1e-4, 1e-2, "log"), "beta": (0.1, 0.9)}
    assert "tunable" in harness.__all__


def test_a_declaration_is_read_sorted_with_its_defaults(tmp_path: Path) -> None:
    registry = Registry.load([str(spaced_plugin(tmp_path))], entry_points=False)
    found = spaces.declared(registry.get("optimizers", "damped-sgd"))
    assert found is not None and found.field == "optimizer" and found.name == "damped-sgd"
    assert found.ranges == (("dampening", Range(0.0, 0.5, False)), ("lr", Range(1e-3, 0.3, True)))
    assert found.fields == (("lr", Range(1e-3, 0.3, True)),)  # a protocol field
    assert found.params == (("dampening", Range(0.0, 0.5, False)),)  # its own parameter
    assert found.defaults == (("dampening", 0.1),)
    assert found.describe() == {"dampening": "[0, 0.5]", "lr": "[0.001, 0.3] log"}


def test_a_factory_without_a_declaration_declares_nothing() -> None:
    registry = Registry.load()
    assert spaces.declared(registry.get("losses", "dice")) is None
    assert spaces.problem(registry.get("losses", "dice")) is None


@pytest.mark.parametrize(
    ("declaration", "signature", "message"),
    [
        ("lr=(0.3, 1e-3, 'log')", "dampening: float = 0.1", "lr: low 0.3 is not below high 0.001"),
        ("lr=(0.0, 1e-3, 'log')", "dampening: float = 0.1", "lr: a log range needs low > 0"),
        ("lr=(1e-4, 1e-3, 'exp')", "dampening: float = 0.1", "the scale 'exp' is not one of"),
        ("lr=(1e-4,)", "dampening: float = 0.1", "is not (low, high)"),
        ("lr=('a', 1e-3)", "dampening: float = 0.1", "not both finite numbers"),
        ("betas=(0.8, 0.9)", "dampening: float = 0.1", "betas: not a parameter of the factory"),
        ("steps=(1, 9)", "steps: int = 3", "steps: the parameter is int; only a float"),
        ("dampening=(0.0, 0.5)", "dampening: float", "dampening: the parameter needs a numeric"),
        ("dampening=(0.0, 0.5)", "dampening=None", "needs a numeric default"),
    ],
)
def test_a_bad_declaration_is_one_line_naming_the_component(
    tmp_path: Path, declaration: str, signature: str, message: str
) -> None:
    registry = _registry(tmp_path, _optimizer(tmp_path, declaration, signature))
    component = registry.get("optimizers", "opt")
    with pytest.raises(HarnessError) as info:
        spaces.declared(component)
    text = str(info.value)
    assert "\n" not in text and message in text, text
    assert text.startswith("optimizer 'opt' from opt_plugin.py (file) declares a bad tuning space")
    assert "harness check-plugin opt" in text
    assert spaces.problem(component) == text


def test_a_mapping_is_required_and_names_are_keys(tmp_path: Path) -> None:
    registry = Registry.load([str(spaced_plugin(tmp_path))], entry_points=False)
    component = registry.get("optimizers", "damped-sgd")
    component.factory.tuning_space = [("lr", (1e-3, 1.0))]
    try:
        assert "expected a mapping" in spaces.problem(component)
        component.factory.tuning_space = {"Lr\n": (1e-3, 1.0)}
        assert "Lr\\n: not a parameter name" in spaces.problem(component)
        component.factory.tuning_space = {"num_classes": (1.0, 2.0)}
        assert "not a parameter of the factory" in spaces.problem(component)
    finally:
        component.factory.tuning_space = {"lr": (1e-3, 0.3, "log"), "dampening": (0.0, 0.5)}


def test_the_harnesss_own_argument_is_not_a_parameter(tmp_path: Path) -> None:
    source = """
    from harness import hookimpl, tunable

    @tunable(image_size=(32, 64))
    def aug(*, image_size, p: float = 0.5):
        return None

    @hookimpl
    def harness_augmentations():
        return {"aug": aug}
    """
    component = _registry(tmp_path, source).get("augmentations", "aug")
    assert "is the harness's own argument" in spaces.problem(component)


def test_the_builtin_optimizers_declare_their_spaces() -> None:
    registry = Registry.load()
    for name, expected in BUILTIN_SPACES.items():
        found = spaces.declared(registry.get("optimizers", name))
        assert found is not None and found.describe() == expected, name
    muon = spaces.declared(registry.get("optimizers", "muon"))
    assert muon.defaults == (("momentum", 0.95),)  # timm's default, now in the signature


def test_every_installed_declaration_is_valid() -> None:
    registry = Registry.load()
    for kind in KINDS:
        for component in registry.components(kind).values():
            assert spaces.problem(component) is None, component.name
            found = spaces.declared(component)
            for name, _ in found.fields if found else ():
                assert name in TUNABLE


def test_check_component_reports_the_declared_space(tmp_path: Path) -> None:
    registry = Registry.load([str(spaced_plugin(tmp_path))], entry_points=False)
    report = check_component(registry, "optimizers", "damped-sgd")
    assert report.ok, report.failures
    (check,) = [c for c in report.checks if c.name == "declares a valid tuning space"]
    assert check.detail == "dampening [0, 0.5], lr [0.001, 0.3] log"
    bad = Registry.load([str(spaced_plugin(tmp_path, bad=True))], entry_points=False)
    report = check_component(bad, "optimizers", "damped-sgd")
    (check,) = report.failures
    assert check.name == "declares a valid tuning space" and "log range" in check.detail
