"""What a sweep varies (``harness.studies.axes``): ``--vary AXIS=v1,v2,...`` read into the
entry's field and its values, each component's parameters kept with it, checked before
anything that trains is loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.components.kinds import COMPONENT_KINDS, TRAINING_KINDS
from harness.errors import HarnessError
from harness.studies.axes import AXES, Axis, parse_vary
from tests.helpers import subprocess_env


def test_parse_vary_keeps_parameters_with_their_value() -> None:
    axis = parse_vary("loss=bce,dice,combo:dice=0.7,bce=0.3")
    assert axis.name == "loss" and axis.values == ("bce", "dice", "combo:dice=0.7,bce=0.3")
    assert parse_vary("aug=none,basic").name == "augmentation"


@pytest.mark.parametrize("text", ["loss", "colour=a,b", "loss=dice", "loss=dice,dice", "loss=a,:x"])
def test_bad_vary(text: str) -> None:
    with pytest.raises(HarnessError, match="--vary"):
        parse_vary(text)


def test_every_name_of_a_kind_is_an_axis_of_its_field() -> None:
    """Every name of a kind that trains varies its field; the kinds applied after training
    (test-time augmentations, post-processors) are in no entry, so no sweep varies them."""
    for kind in TRAINING_KINDS:
        for name in kind.axes:
            assert parse_vary(f"{name}=a,b") == Axis(kind.field, ("a", "b"))
    assert set(AXES.values()) == {kind.field for kind in TRAINING_KINDS} | {"encoder"}
    for kind in set(COMPONENT_KINDS) - set(TRAINING_KINDS):
        with pytest.raises(HarnessError, match="--vary"):
            parse_vary(f"{kind.field}=a,b")


def test_encoders_are_names_not_components() -> None:
    axis = parse_vary("encoder=resnet18,tu-convnext_tiny, mit_b0")
    assert axis == Axis("encoder", ("resnet18", "tu-convnext_tiny", "mit_b0"))
    assert axis.title == "Encoder"


def test_empty_values_are_skipped_before_counting() -> None:
    assert parse_vary("loss= bce,,dice,").values == ("bce", "dice")
    with pytest.raises(HarnessError, match="at least two values"):
        parse_vary("loss=dice,,")


def test_reading_vary_imports_no_torch() -> None:
    code = "import sys, harness.studies.axes; print('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert done.stdout.strip() == "False", done.stderr
