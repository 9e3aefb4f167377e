"""The trackers' picture (``harness.runs.tracking.preview``): a validation image, its truth
and the prediction side by side at most ``side`` pixels a panel, rendered once per
validation however many trackers show it, leaving the model and the random state as they
were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harness import protocol as protocols
from harness.data.layout import list_images, split
from harness.data.sources import synthetic_dataset
from harness.runs.tracking.preview import Preview


@pytest.fixture(scope="module")
def image() -> Path:
    """A validation image of the ``tiny`` protocol's phantom (64 px)."""
    proto = protocols.load("tiny")
    root = synthetic_dataset(proto.synth_ids, proto.synth_size, proto.synth_seed)
    _, val = split(list_images(root, "train"), proto.folds, proto.fold)
    return val[0]


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Dropout(0.5), torch.nn.Conv2d(4, 29, 1)
    )


def test_the_preview_leaves_the_model_and_the_random_state_as_they_were(image: Path) -> None:
    model = _model()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    picture = Preview(image, protocols.load("tiny").resolution, side=32).render(model)
    assert picture.shape == (32, 96, 3) and picture.dtype.name == "uint8"
    assert model.training
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    model.eval()
    Preview(image, 32, side=32).render(model)
    assert not model.training  # handed back as it came: in eval mode, it stays there


def test_panels_are_the_image_its_truth_and_the_prediction(image: Path) -> None:
    """A model that predicts nothing: the prediction panel is the grey image itself, the
    truth panel is tinted where the bones are."""
    nothing = torch.nn.Conv2d(1, 29, 1)
    torch.nn.init.zeros_(nothing.weight)
    torch.nn.init.constant_(nothing.bias, -10.0)  # every sigmoid far below 0.5
    picture = Preview(image, 32, side=48).render(nothing)
    grey, truth, predicted = np.split(picture, 3, axis=1)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    assert np.array_equal(predicted, grey)
    assert not np.array_equal(truth, grey)


def test_one_rendering_per_validation_however_many_trackers_ask(image: Path) -> None:
    preview = Preview(image, 32, side=32)
    model = _model()
    first = preview.at(4, model)
    assert preview.at(4, model) is first  # the second tracker of the same validation
    with torch.no_grad():
        model[0].weight.add_(1.0)  # trained on since
    later = preview.at(8, model)
    assert later is not first and later.shape == first.shape
