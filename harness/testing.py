"""Conformance checks for a plugin author's own tests: one stable import.

``harness check-plugin NAME`` checks one installed component from the command line;
this module does the same from Python, for a whole plugin at once, without installing
it::

    # tests/test_my_plugin.py
    from harness.testing import assert_conforms

    def test_my_plugin_conforms():
        assert_conforms("my_plugin")            # a module name, or a path to a .py file

The plugin is loaded on its own (installed plugins, the built-ins included, are not
loaded), so the checks see exactly the components it offers. What each check promises
is described in ``harness/components/conformance.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from harness.components.conformance import Check, Report, check_component
from harness.components.registry import Registry
from harness.errors import HarnessError

__all__ = ["Check", "Report", "assert_conforms", "check_component", "check_plugin"]

PluginSpec = str | os.PathLike[str] | ModuleType


def check_plugin(
    plugin: PluginSpec,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[Report, ...]:
    """Run the conformance checks on every component ``plugin`` offers, by kind then name.

    ``plugin`` is an importable module name, a path to a ``.py`` file, or an imported
    module. ``params`` maps a component's name to the parameters it is built with
    (default: none). A plugin that fails to load, or offers nothing, is a
    ``HarnessError``; a component that breaks a promise is a failed check in its report.
    """
    spec = plugin.__name__ if isinstance(plugin, ModuleType) else os.fspath(plugin)
    registry = Registry.load([spec], entry_points=False)
    components = registry.all()
    if not components:
        raise HarnessError(
            f"plugin '{spec}' offers no components; implement a harness_* hook with @hookimpl"
        )
    params = params or {}
    return tuple(check_component(registry, c.kind, c.name, params.get(c.name)) for c in components)


def assert_conforms(
    plugin: PluginSpec,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[Report, ...]:
    """``check_plugin``, raising ``AssertionError`` that lists every failed check."""
    reports = check_plugin(plugin, params)
    failed = [report for report in reports if not report.ok]
    if failed:
        lines = []
        for report in failed:
            lines.append(report.summary)
            lines.extend(f"  {check.name}: {check.detail}" for check in report.failures)
        raise AssertionError("\n".join(lines))
    return reports
