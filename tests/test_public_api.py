"""The package's public face: ``harness.__all__`` resolves, stays light, and checks plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import harness
import harness.testing
from harness.components.registry import Registry

HEAVY = ("torch", "torchvision", "segmentation_models_pytorch", "albumentations", "cv2", "rich")


def fresh_modules(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return set(result.stdout.split())


@pytest.mark.parametrize(
    "code",
    [
        "import harness",
        "from harness import hookimpl",
        "from harness import __version__, HarnessError, Registry, CLASSES, load_protocol",
    ],
)
def test_importing_the_light_names_imports_no_heavy_library(code: str) -> None:
    loaded = fresh_modules(code)
    assert "harness" in loaded
    heavy = sorted(name for name in HEAVY if name in loaded)
    assert not heavy, f"`{code}` imported {', '.join(heavy)}"


def test_every_public_name_resolves() -> None:
    assert len(set(harness.__all__)) == len(harness.__all__)
    assert set(harness.__all__) == {"__version__", "hookimpl", *harness._LAZY}
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from harness import *", namespace)
    assert set(harness.__all__) <= set(namespace)
    assert set(harness.__all__) <= set(dir(harness))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        harness.nope  # noqa: B018
    assert not hasattr(harness, "nope")


def test_lazy_names_are_the_objects_of_their_modules() -> None:
    from harness.components import conformance
    from harness.errors import HarnessError

    assert harness.HarnessError is HarnessError
    assert harness.check_component is conformance.check_component
    assert harness.check_plugin is harness.testing.check_plugin
    assert harness.testing.check_component is conformance.check_component


def test_check_component_on_a_builtin() -> None:
    from harness import check_component

    report = check_component(Registry.load(), "losses", "dice")
    assert report.ok, report.failures
    assert report.summary.startswith("loss 'dice' from builtin-losses (segmentation-harness ")


def test_check_plugin_on_a_builtin_module() -> None:
    from harness.testing import assert_conforms

    reports = assert_conforms("harness_plugins.schedulers")
    names = {registered.name for registered in Registry.load().components("schedulers").values()}
    assert {report.name for report in reports} == names
    assert all(report.kind == "schedulers" for report in reports)


def test_assert_conforms_lists_every_failed_check(tmp_path: Path) -> None:
    plugin = tmp_path / "my_losses.py"
    plugin.write_text(
        textwrap.dedent(
            """
            from harness import hookimpl

            def good(logits, target):
                return ((logits.sigmoid() - target) ** 2).mean()

            def detached(logits, target):
                return ((logits.sigmoid() - target) ** 2).mean().detach()

            @hookimpl
            def harness_losses():
                return {"good": lambda: good, "detached": lambda: detached}
            """
        )
    )
    reports = harness.testing.check_plugin(plugin)
    assert [(r.name, r.ok) for r in reports] == [("detached", False), ("good", True)]
    with pytest.raises(AssertionError) as caught:
        harness.testing.assert_conforms(str(plugin))
    message = str(caught.value)
    assert message.startswith("loss 'detached' from my_losses.py (file) does not conform")
    assert "differentiable" in message and "'good'" not in message


def test_check_plugin_of_a_plugin_offering_nothing_is_a_harness_error(tmp_path: Path) -> None:
    plugin = tmp_path / "empty.py"
    plugin.write_text("X = 1\n")
    with pytest.raises(harness.HarnessError, match="offers no components"):
        harness.testing.check_plugin(plugin)
