"""The conformance checks (``harness.components.conformance``): a broken component fails the
check it breaks, with what was seen, and the checks never raise for a plugin's fault; a
kind is named or found from the component's name.

Every installed component passing them is ``tests/components/test_catalog.py``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.components.conformance import (
    Check,
    Report,
    check_component,
    normalize_kind,
    resolve_kind,
)
from harness.components.registry import Registry
from harness.errors import HarnessError

pytestmark = pytest.mark.usefixtures("one_thread")

BUILTINS = Registry.load()


def test_a_report_conforms_when_every_check_ran_and_passed() -> None:
    passed, failed = Check("builds", True, "Conv"), Check("scalar", False, "shape (2,)")
    report = Report("losses", "mine", "mine.py (file)", {"w": 2, "a": 1}, (passed, failed))
    assert not report.ok and report.failures == (failed,)
    assert report.title == "loss 'mine:a=1,w=2' from mine.py (file)"
    assert report.summary == report.title + " does not conform: 1 of 2 checks passed"
    assert Report("losses", "mine", "x", checks=(passed,)).ok
    assert not Report("losses", "mine", "x").ok  # nothing checked is nothing promised


BROKEN = """
import numpy as np
import torch
from harness import hookimpl


class Flat(torch.nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, num_classes, 3, padding=1)
        self.unused = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.conv(x)


class Shrinks(torch.nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, num_classes, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


def explodes(*, num_classes, in_channels, encoder):
    raise RuntimeError("no GPU here")


class ImageOnlyFlip:
    def __call__(self, *, image, mask):
        return {"image": np.ascontiguousarray(image[:, ::-1]), "mask": mask}


class GreyMask:
    def __call__(self, *, image, mask):
        return {"image": image, "mask": (mask * 255).astype(np.uint8)}


@hookimpl
def harness_models():
    return {
        "with-unused": lambda *, num_classes, in_channels, encoder: Flat(num_classes),
        "shrinks": lambda *, num_classes, in_channels, encoder: Shrinks(num_classes),
        "explodes": explodes,
    }


@hookimpl
def harness_losses():
    def per_pixel(**params):
        return lambda logits, target: (logits - target).abs()

    def detached(**params):
        return lambda logits, target: (logits - target).abs().mean().detach()

    return {"per-pixel": per_pixel, "detached": detached}


@hookimpl
def harness_optimizers():
    def fixed_lr(params, *, lr, weight_decay):
        return torch.optim.SGD(params, lr=0.1)

    return {"fixed-lr": fixed_lr}


@hookimpl
def harness_schedulers():
    def negative(optimizer, *, total_steps, warmup_steps):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 1 - k / 5)

    return {"negative": negative}


@hookimpl
def harness_augmentations():
    return {
        "image-only-flip": lambda *, image_size: ImageOnlyFlip(),
        "grey-mask": lambda *, image_size: GreyMask(),
    }


def _same(t):
    return t


@hookimpl
def harness_tta():
    def not_inverted():  # flips the input, never flips the logits back
        return [(_same, _same), (lambda t: torch.flip(t, dims=(-1,)), _same)]

    def odd_size():  # inputs no model takes
        return [(lambda t: t[..., :-1, :-1], _same)]

    return {"not-inverted": not_inverted, "odd-size": odd_size, "not-pairs": lambda: [_same]}


@hookimpl
def harness_postprocessors():
    def in_place():
        def run(masks):
            masks[:] = False
            return masks

        return run

    def grey():
        return lambda masks: masks.astype(np.uint8) * 255

    return {"in-place": in_place, "grey": grey}
"""


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    path = Path(tmp_path_factory.mktemp("broken")) / "broken_plugin.py"
    path.write_text(textwrap.dedent(BROKEN))
    return Registry.load([str(path)], entry_points=False)


@pytest.mark.parametrize(
    ("kind", "name", "check", "detail"),
    [
        ("models", "with-unused", "gradients reach every parameter", "unused.weight"),
        ("models", "shrinks", "logits for 2x1x64x64", "expected (2, 29, 64, 64)"),
        ("models", "explodes", "builds", "RuntimeError: no GPU here"),
        ("losses", "per-pixel", "finite scalar", "expected a 0-dim tensor"),
        ("losses", "detached", "differentiable", "does not require grad"),
        ("optimizers", "fixed-lr", "honours lr and weight_decay", "lr 0.01 gives group lr 0.1"),
        ("schedulers", "negative", "steps with lr finite and >= 0", "has lr -"),
        ("augmentations", "image-only-flip", "keeps image and masks aligned", "IoU"),
        ("augmentations", "grey-mask", "keeps masks binary", "mask values [0, 255]"),
        ("tta", "not-inverted", "invert undoes apply", "logits came back moved"),
        ("tta", "odd-size", "logits back at the input's shape for 2x1x64x64", "multiples of 32"),
        ("tta", "not-pairs", "builds", "(apply, invert) pairs"),
        ("postprocessors", "in-place", "leaves its input unchanged", "in place"),
        (
            "postprocessors",
            "grey",
            "bool masks back at the input's shape for 29x64x64",
            "values other than 0 and 1",
        ),
    ],
)
def test_checks_report_broken_plugins_without_raising(
    broken: Registry, kind: str, name: str, check: str, detail: str
) -> None:
    report = check_component(broken, kind, name)
    assert not report.ok
    failed = {c.name: c.detail for c in report.failures}
    assert check in failed, report.checks
    assert detail in failed[check]
    assert "does not conform" in report.summary and name in report.summary


def test_a_model_that_does_not_build_skips_the_rest(broken: Registry) -> None:
    report = check_component(broken, "models", "explodes")
    assert [c.passed for c in report.checks] == [False] * 4
    assert all(c.detail.startswith("not run") for c in report.checks[1:])


def test_kinds_resolve_by_name_or_ask(tmp_path: Path) -> None:
    assert resolve_kind(BUILTINS, "lovasz") == "losses"
    assert resolve_kind(BUILTINS, "lovasz", "loss") == "losses"
    assert normalize_kind("models") == "models"
    with pytest.raises(HarnessError, match="unknown component kind 'modle'"):
        normalize_kind("modle")
    with pytest.raises(HarnessError, match="did you mean: lovasz"):
        resolve_kind(BUILTINS, "lovaz")
    both = tmp_path / "both.py"
    both.write_text(
        "from harness import hookimpl\n"
        "@hookimpl\ndef harness_models():\n    return {'twice': print}\n"
        "@hookimpl\ndef harness_losses():\n    return {'twice': print}\n"
    )
    registry = Registry.load([str(both)], entry_points=False)
    with pytest.raises(HarnessError, match="'twice' names a model and a loss; .*--kind model"):
        resolve_kind(registry, "twice")
    with pytest.raises(HarnessError, match="unknown loss 'nope'"):
        check_component(BUILTINS, "loss", "nope")
