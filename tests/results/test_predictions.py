"""Kept predictions (``harness.results.predictions``): one byte a pixel that thresholds exactly
as the run did, the same bytes for the same arrays, and a file that is not its record's refused."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.results.predictions import (
    PREDICTIONS_NAME,
    Kept,
    cut,
    encode,
    quantize,
    write_predictions,
)


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.9])
def test_one_byte_thresholds_exactly_where_the_probability_did(threshold: float) -> None:
    rng = np.random.default_rng(0)
    edge = np.float32(threshold)
    p = np.concatenate(
        [
            rng.random(10_000, dtype=np.float32),
            np.nextafter(edge, np.float32(0)) + np.zeros(3, np.float32),  # just below
            edge + np.zeros(3, np.float32),  # exactly at: background
            np.nextafter(edge, np.float32(1)) + np.zeros(3, np.float32),  # just above
            np.array([0, 1], np.float32),
        ]
    )
    q = quantize(p, threshold)
    assert q.dtype == np.uint8
    assert np.array_equal(q > cut(threshold), p > threshold)
    assert np.abs(q / 255 - p).max() <= 1 / 255  # nudged by at most one level
    assert q[-2] == 0 and q[-1] == 255


def _images(n: int = 2) -> list[tuple[str, dict[str, np.ndarray]]]:
    rng = np.random.default_rng(1)
    return [
        (f"image{i}.png", {t: rng.random((29, 8, 6), dtype=np.float32) for t in ("none", "hflip")})
        for i in range(n)
    ]


def test_same_arrays_same_bytes_and_they_read_back(tmp_path: Path) -> None:
    images = _images()
    assert encode(images, 0.5) == encode(images, 0.5)
    summary = write_predictions(tmp_path, images, 0.5)
    assert summary["file"] == PREDICTIONS_NAME and summary["images"] == 2
    assert summary["tta"] == ["hflip", "none"]
    assert summary["bytes"] == (tmp_path / PREDICTIONS_NAME).stat().st_size
    kept = Kept.open(tmp_path, summary)
    assert kept.names == ("image0.png", "image1.png") and kept.tta == ("hflip", "none")
    for i, (_, by_tta) in enumerate(images):
        for tta, p in by_tta.items():
            assert np.array_equal(kept.load(tta, i), quantize(p, 0.5))
    with zipfile.ZipFile(tmp_path / PREDICTIONS_NAME) as archive:  # numpy reads it too
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_LZMA}
        array = np.load(io.BytesIO(archive.read("none/00001.npy")))
    assert np.array_equal(array, quantize(images[1][1]["none"], 0.5))


def test_a_file_that_is_not_the_records_is_refused(tmp_path: Path) -> None:
    summary = write_predictions(tmp_path, _images(), 0.5)
    with pytest.raises(HarnessError, match=r"cannot be read .*publish_records"):
        Kept.open(tmp_path / "elsewhere", summary)
    with pytest.raises(HarnessError, match="size or SHA-256 differ"):
        Kept.open(tmp_path, {**summary, "sha256": "0" * 64})
    with pytest.raises(HarnessError, match="must be a file in its folder"):
        Kept.open(tmp_path, {**summary, "file": "../predictions.npz"})
    kept = Kept.open(tmp_path, summary)
    with pytest.raises(HarnessError, match="cannot read multiscale/00000.npy"):
        kept.load("multiscale", 0)
