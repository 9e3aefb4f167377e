"""The package's public face (``harness/__init__.py``): ``harness.__all__`` resolves, each lazy
name is its module's object, and ``import harness`` stays light.

What ``harness.testing`` does with a plugin is tested in ``tests/test_testing.py``.
"""

from __future__ import annotations

import subprocess
import sys

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
        "from harness import hookimpl, tunable",
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
