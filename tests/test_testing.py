"""Conformance checks for a plugin author's own tests (``harness.testing``): ``check_plugin``
loads the plugin on its own and reports each component; ``assert_conforms`` fails listing
every broken check."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

import harness.testing
from harness.components.registry import Registry
from harness.errors import HarnessError

pytestmark = pytest.mark.usefixtures("one_thread")

LOSSES = """
from harness import hookimpl

def good(logits, target):
    return ((logits.sigmoid() - target) ** 2).mean()

def detached(logits, target):
    return ((logits.sigmoid() - target) ** 2).mean().detach()

def scaled(*, weight):
    return lambda logits, target: weight * ((logits.sigmoid() - target) ** 2).mean()

@hookimpl
def harness_losses():
    return {"good": lambda: good, "detached": lambda: detached, "scaled": scaled}
"""


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    path = tmp_path / "my_losses.py"
    path.write_text(textwrap.dedent(LOSSES))
    return path


def test_check_plugin_on_a_builtin_module() -> None:
    from harness.testing import assert_conforms

    reports = assert_conforms("harness_plugins.schedulers")
    names = {registered.name for registered in Registry.load().components("schedulers").values()}
    assert {report.name for report in reports} == names
    assert all(report.kind == "schedulers" for report in reports)


def test_assert_conforms_lists_every_failed_check(plugin: Path) -> None:
    params = {"scaled": {"weight": 2.0}}
    reports = harness.testing.check_plugin(plugin, params)
    assert [(r.name, r.ok) for r in reports] == [
        ("detached", False),
        ("good", True),
        ("scaled", True),
    ]
    with pytest.raises(AssertionError) as caught:
        harness.testing.assert_conforms(str(plugin), params)
    message = str(caught.value)
    assert message.startswith("loss 'detached' from my_losses.py (file) does not conform")
    assert "differentiable" in message and "'good'" not in message


def test_params_reach_only_the_component_they_name(plugin: Path) -> None:
    without = {r.name: r for r in harness.testing.check_plugin(plugin)}
    assert not without["scaled"].ok
    assert [c.name for c in without["scaled"].failures][0] == "builds"
    assert without["good"].ok and without["good"].params == {}
    given = {r.name: r for r in harness.testing.check_plugin(plugin, {"scaled": {"weight": 2.0}})}
    scaled = given["scaled"]
    assert given["good"].params == {}
    assert scaled.ok and scaled.title == "loss 'scaled:weight=2.0' from my_losses.py (file)"


def test_an_imported_module_is_checked_as_its_name_is(
    plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(plugin.parent))
    try:
        module = importlib.import_module("my_losses")
        by_module = harness.testing.check_plugin(module, {"scaled": {"weight": 2.0}})
        by_name = harness.testing.check_plugin("my_losses", {"scaled": {"weight": 2.0}})
    finally:
        sys.modules.pop("my_losses", None)
    assert [(r.name, r.ok) for r in by_module] == [(r.name, r.ok) for r in by_name]
    assert [r.ok for r in by_module] == [False, True, True]
    assert {r.provider for r in by_module} == {"my_losses (module)"}


def test_check_plugin_of_a_plugin_offering_nothing_is_a_harness_error(tmp_path: Path) -> None:
    plugin = tmp_path / "empty.py"
    plugin.write_text("X = 1\n")
    with pytest.raises(HarnessError, match="offers no components"):
        harness.testing.check_plugin(plugin)
