"""The plugin's own test: the harness's conformance checks on every component it offers.

Run from this folder, with the plugin installed: ``python -m pytest tests``.
"""

from harness.testing import assert_conforms


def test_every_component_conforms() -> None:
    reports = assert_conforms("harness_example")
    assert {report.name for report in reports} == {"mini-unet", "soft-dice"}


def test_a_narrow_mini_unet_conforms() -> None:
    assert_conforms("harness_example", {"mini-unet": {"width": 4}})
