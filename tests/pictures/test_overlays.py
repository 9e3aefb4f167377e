"""Overlays (``harness.pictures.overlays``): one distinct colour per class, masks tinted over
an image with their outlines, and titled grids of panels drawn at their pixel size."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.classes import NUM_CLASSES
from harness.pictures.overlays import class_colors, overlay, prediction_panel, save_grid

GREY = 100


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.ndim == 3 and image.shape[2] == 3  # RGB, no alpha
    return image[:, :, ::-1]


def test_one_distinct_colour_per_class_the_same_every_time() -> None:
    colors = class_colors()
    assert colors.shape == (NUM_CLASSES, 3) and colors.dtype == np.uint8
    assert len({tuple(c) for c in colors}) == NUM_CLASSES
    assert np.array_equal(colors, class_colors())
    neighbours = np.abs(np.diff(colors.astype(int), axis=0)).sum(axis=1)
    assert neighbours.min() > 150  # the bones of one finger are told apart at a glance


def test_masks_are_tinted_and_outlined_in_their_colours() -> None:
    image = np.full((32, 32), GREY, np.uint8)
    masks = np.zeros((NUM_CLASSES, 32, 32), bool)
    masks[0, 8:24, 8:24] = True
    masks[1, 12:20, 12:28] = True  # overlaps class 0: both tints
    out = overlay(image, masks, alpha=0.5)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    colors = class_colors().astype(float)
    assert (out[2, 2] == GREY).all()  # outside every mask: the image
    assert np.array_equal(out[10, 10], np.rint((GREY + colors[0]) / 2))
    both = np.rint(((GREY + colors[0]) / 2 + colors[1]) / 2)
    assert np.abs(out[16, 16].astype(float) - both).max() <= 1
    assert np.array_equal(out[8, 10], class_colors()[0])  # the outline
    assert np.array_equal(out[16, 27], class_colors()[1])


def test_no_mask_leaves_the_image_and_rgb_is_taken_as_it_is() -> None:
    image = np.arange(16 * 16, dtype=np.uint8).reshape(16, 16)
    empty = np.zeros((NUM_CLASSES, 16, 16), np.uint8)
    assert np.array_equal(overlay(image, empty), np.repeat(image[..., None], 3, axis=2))
    rgb = np.dstack([image, image // 2, 255 - image])
    assert np.array_equal(overlay(rgb, empty), rgb)


@pytest.mark.parametrize(
    ("image", "masks", "problem"),
    [
        (np.zeros((8, 8, 4), np.uint8), np.zeros((1, 8, 8)), "image must be"),
        (np.zeros((8, 8), np.uint8), np.zeros((1, 8, 6)), r"masks must be \(C, 8, 8\)"),
        (np.zeros((8, 8), np.uint8), np.zeros((NUM_CLASSES + 1, 8, 8)), "at most 29 classes"),
    ],
)
def test_shapes_it_cannot_draw_are_value_errors(
    image: np.ndarray, masks: np.ndarray, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        overlay(image, masks)


def test_a_grid_draws_each_panel_at_its_pixel_size(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(0, 240, 6, dtype=np.uint8), (40, 1))  # 40 x 40
    red = np.zeros((40, 40, 3), np.uint8)
    red[..., 0] = 255
    target = tmp_path / "grid.png"
    save_grid(target, [("ramp", ramp), ("red", red), ("again", ramp)], columns=2)
    picture = read_rgb(target).astype(int)
    # Two columns and two rows of 40 px panels, 6 px apart, each under a 22 px title.
    assert picture.shape == (2 * (40 + 22 + 6) + 6, 2 * (40 + 6) + 6, 3)
    assert np.abs(picture[28:68, 6:46] - ramp[..., None]).max() <= 1
    assert (picture[28:68, 52:92] == [255, 0, 0]).all()
    assert np.abs(picture[96:136, 6:46] - ramp[..., None]).max() <= 1
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # written atomically
    first = target.read_bytes()
    save_grid(target, [("ramp", ramp), ("red", red), ("again", ramp)], columns=2)
    assert target.read_bytes() == first  # same panels, same bytes


def test_a_grid_needs_a_panel_and_caps_large_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no panels"):
        save_grid(tmp_path / "none.png", [])
    save_grid(tmp_path / "big.png", [("big", np.zeros((600, 700), np.uint8))], columns=3)
    assert read_rgb(tmp_path / "big.png").shape == (512 + 22 + 12, 512 + 12, 3)


def test_a_prediction_panel_is_image_truth_and_prediction_in_a_row(tmp_path: Path) -> None:
    image = np.full((24, 24), GREY, np.uint8)
    truth = np.zeros((NUM_CLASSES, 24, 24), bool)
    truth[3, 4:12, 4:12] = True
    path = prediction_panel(image, truth, np.roll(truth, 6, axis=2), tmp_path / "p.png", "image1")
    assert path == tmp_path / "p.png"
    picture = read_rgb(path)
    assert picture.shape == (24 + 22 + 12, 3 * (24 + 6) + 6, 3)
    tint = np.rint((1 - 0.45) * GREY + 0.45 * class_colors()[3].astype(float))
    truth_panel, predicted_panel = picture[28:52, 36:60], picture[28:52, 66:90]
    assert np.abs(truth_panel[8, 8] - tint).max() <= 1  # inside the truth
    assert np.abs(predicted_panel[8, 14] - tint).max() <= 1  # inside the shifted prediction
    assert np.abs(predicted_panel[8, 5].astype(int) - GREY).max() <= 1
