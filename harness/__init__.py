"""harness: a plugin-based benchmark harness for semantic segmentation.

The public API is the names in ``__all__``; everything else is internal and may move.

- Plugin authors need ``hookimpl`` (``from harness import hookimpl``), ``tunable`` to
  declare the hyper-parameters their component wants tuned and their ranges, and, in their own
  tests, the conformance checks of ``harness.testing`` (``check_plugin``,
  ``assert_conforms``), also importable from here.
- Python users get the component ``Registry``, the error users can fix
  (``HarnessError``), the class names, and protocols (``load_protocol``).

``import harness`` stays light (no torch): names that live in heavy modules are
imported on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from harness.components.hookspecs import hookimpl

__version__ = "0.1.0"

if TYPE_CHECKING:
    from harness.classes import CLASSES, NUM_CLASSES
    from harness.components.conformance import Check, Report, check_component
    from harness.components.registry import Registry
    from harness.components.spaces import tunable
    from harness.errors import HarnessError
    from harness.protocol import Protocol
    from harness.protocol import load as load_protocol
    from harness.testing import assert_conforms, check_plugin

#: Public name -> (module, attribute) for the names imported on first use.
_LAZY: dict[str, tuple[str, str]] = {
    "CLASSES": ("harness.classes", "CLASSES"),
    "NUM_CLASSES": ("harness.classes", "NUM_CLASSES"),
    "HarnessError": ("harness.errors", "HarnessError"),
    "Protocol": ("harness.protocol", "Protocol"),
    "load_protocol": ("harness.protocol", "load"),
    "Registry": ("harness.components.registry", "Registry"),
    "tunable": ("harness.components.spaces", "tunable"),
    "Check": ("harness.components.conformance", "Check"),
    "Report": ("harness.components.conformance", "Report"),
    "check_component": ("harness.components.conformance", "check_component"),
    "check_plugin": ("harness.testing", "check_plugin"),
    "assert_conforms": ("harness.testing", "assert_conforms"),
}

__all__ = [
    "__version__",
    "hookimpl",
    "tunable",
    "HarnessError",
    "Registry",
    "CLASSES",
    "NUM_CLASSES",
    "Protocol",
    "load_protocol",
    "check_plugin",
    "assert_conforms",
    "check_component",
    "Report",
    "Check",
]


def __getattr__(name: str) -> Any:
    """Import a lazily exported name on first access and cache it in the module."""
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'harness' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
