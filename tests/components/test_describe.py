"""What a component is, for people (``harness.components.describe``): ``harness show`` and
``harness list``'s description column read it."""

from __future__ import annotations

from pathlib import Path

import pytest

import harness
from harness.components.describe import (
    describe,
    first_paragraph,
    plural_of,
    space_summary,
    summary,
)
from harness.components.registry import Registry
from harness.errors import HarnessError
from tests.helpers import spaced_plugin

PLUGIN = '''
from harness import hookimpl


def soft(*, smoothing: float = 0.05, **params):
    """Soft labels, ``smoothing`` of the way to 1/2.

    More detail that ``harness show`` leaves out.
    """


def bare(*, k=1):
    pass


@hookimpl
def harness_losses():
    return {"soft": soft, "bare": bare}
'''


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    path = tmp_path_factory.mktemp("describe") / "soft_losses.py"
    path.write_text(PLUGIN)
    return Registry.load([str(path)], entry_points=False)


def test_a_component_is_described_from_its_factory(registry: Registry) -> None:
    info = describe(registry, "loss", "soft")  # singular or plural
    assert info.component.provider() == "soft_losses.py (file)"
    assert info.about == "Soft labels, `smoothing` of the way to 1/2."
    assert [(p.name, p.annotation, p.default) for p in info.parameters.own] == [
        ("smoothing", "float", 0.05)
    ]
    assert info.parameters.open
    assert info.tuning_space is None and info.tuning_problem is None  # it declares none
    bare = describe(registry, "losses", "bare")
    assert bare.about == "" and bare.parameters.names() == ["k"]


def test_a_builtin_is_described_with_its_distribution_and_version() -> None:
    info = describe(Registry.load(), "optimizers", "sgd")
    assert info.component.provider() == (
        f"builtin-optimizers (segmentation-harness {harness.__version__})"
    )
    assert info.parameters.names() == ["momentum"]  # params, lr and weight_decay are the harness's
    assert info.about.startswith("SGD with momentum")


def test_an_unknown_kind_or_name_is_the_registrys_error_with_near_matches(
    registry: Registry,
) -> None:
    with pytest.raises(HarnessError, match="unknown loss 'sof'; did you mean: soft"):
        describe(registry, "losses", "sof")
    with pytest.raises(HarnessError, match="unknown component kind 'los'; did you mean losses"):
        describe(registry, "los", "soft")


def test_plural_of_reads_either_number() -> None:
    assert plural_of("model") == plural_of("models") == "models"
    assert plural_of("augmentation") == "augmentations"
    assert plural_of("gadgets") == "gadgets"  # for the registry to refuse


def test_docstring_pieces(tmp_path: Path) -> None:
    def f() -> None:
        """First line
        goes on.

        Second paragraph."""

    assert first_paragraph(f) == "First line goes on."
    assert summary(f) == "First line"
    assert first_paragraph(lambda: None) == summary(lambda: None) == ""


def test_a_declared_space_is_described_and_a_bad_one_named(tmp_path: Path) -> None:
    sgd = describe(Registry.load(), "optimizers", "sgd")
    assert sgd.tuning_space == {"lr": "[0.001, 1] log", "momentum": "[0.8, 0.99]"}
    assert sgd.tuning_problem is None
    assert space_summary(sgd.component) == "lr [0.001, 1] log, momentum [0.8, 0.99]"
    assert space_summary(Registry.load().get("losses", "dice")) == ""
    bad = Registry.load([str(spaced_plugin(tmp_path, bad=True))], entry_points=False)
    info = describe(bad, "optimizers", "damped-sgd")
    assert info.tuning_space is None and "a log range needs low > 0" in info.tuning_problem
    assert space_summary(info.component) == "invalid (harness check-plugin damped-sgd)"
