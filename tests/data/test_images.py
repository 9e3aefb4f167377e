"""Images (``harness.data.images``): a grey X-ray decoded, its size checked against its label
file, resized by area to the model's view, and turned into the models' input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from harness.data.annotations import Annotation
from harness.data.images import check_size, read_gray, resize_image, to_input
from harness.errors import HarnessError


def test_read_gray_gives_8_bit_grey_even_from_a_colour_png(tmp_path: Path) -> None:
    grey = np.arange(12 * 20, dtype=np.uint8).reshape(12, 20)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    assert np.array_equal(read_gray(tmp_path / "grey.png"), grey)
    colour = np.zeros((12, 20, 3), np.uint8)
    colour[..., 1] = 200  # pure green
    cv2.imwrite(str(tmp_path / "colour.png"), colour)
    image = read_gray(tmp_path / "colour.png")
    assert image.shape == (12, 20) and image.dtype == np.uint8
    assert 100 < int(image[0, 0]) < 200  # green's share of luminance, not one channel


def test_an_unreadable_image_is_one_line_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "image1.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(HarnessError, match=r"image1\.png: not a readable image; replace or remove"):
        read_gray(broken)


def test_to_input_is_one_float_channel_in_0_1() -> None:
    image = np.array([[0, 51], [255, 102]], np.uint8)
    x = to_input(image)
    assert x.shape == (1, 2, 2) and x.dtype == torch.float32
    assert torch.allclose(x, torch.tensor([[[0.0, 0.2], [1.0, 0.4]]]))


def test_resize_averages_areas_and_leaves_the_right_size_alone() -> None:
    image = np.array([[0, 2, 10, 10], [2, 0, 10, 10], [4, 4, 0, 0], [4, 4, 0, 200]], np.uint8)
    assert resize_image(image, 4) is image
    assert np.array_equal(resize_image(image, 2), [[1, 10], [4, 50]])
    assert resize_image(image, 8).shape == (8, 8)
    tall = np.zeros((6, 3), np.uint8)
    assert resize_image(tall, 5).shape == (5, 5)  # always square: the model's view


def test_a_size_that_differs_from_the_label_file_names_both() -> None:
    label = Annotation(Path("image1.json"), height=30, width=40, polygons=())
    check_size(Path("image1.png"), np.zeros((30, 40), np.uint8), label)
    with pytest.raises(HarnessError) as caught:
        check_size(Path("image1.png"), np.zeros((40, 30), np.uint8), label)
    assert str(caught.value) == (
        "image1.png: image is 30x40 but its label file says 40x30; fix the metadata or the image"
    )
