"""Out-of-fold predictions kept beside a run's record (``harness run --keep-predictions``).

A run that keeps its predictions writes ``predictions.npz`` in its folder, beside
``record.json``: for each validation image of its fold and each test-time augmentation, the
probabilities the metric thresholds (the logits upsampled to the scoring resolution, then
the sigmoid), so that ``harness select`` can score ensembles, test-time augmentations and
post-processing later with no model, no retraining and no GPU.

Stored small: each probability ``p`` as one byte ``q = round(255 p)``, nudged by one where
that would cross the threshold ``t``, so that ``q > 255 t`` exactly where ``p > t`` (one
model's masks are the ones its record scored, pixel for pixel); each array an ``.npy``
member of a zip compressed with LZMA (readable with ``numpy.load``). Members:
``names.npy`` (the images' base names, in the record's ``val_images`` order) and
``<tta>/<index>.npy``, ``uint8 (29, H, W)``. Same arrays, same bytes (no timestamps).

The record names the file with its size and SHA-256 (``Record.predictions``:
``file``, ``bytes``, ``sha256``, ``tta``, ``images``), read back by ``Kept``.
"""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import atomic_write_bytes
from harness.errors import HarnessError

#: The file a run's kept predictions are in, beside its ``record.json``.
PREDICTIONS_NAME = "predictions.npz"
#: A probability is stored as one of 256 levels, ``q / LEVELS``.
LEVELS = 255
#: A zip member's date: fixed, so the same arrays give the same bytes.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_NAMES = "names.npy"


def quantize(probabilities: Any, threshold: float) -> np.ndarray:
    """``uint8`` levels of float probabilities: ``round(255 p)``, and where that would put
    a pixel on the other side of ``threshold`` than ``p > threshold`` does, the nearest
    level on its side (so ``q > 255 t`` exactly where ``p > t``)."""
    p = np.asarray(probabilities, dtype=np.float32)
    q = np.rint(np.clip(p, 0, 1) * LEVELS).astype(np.uint8)
    edge = cut(threshold)  # q > edge is foreground
    above = p > threshold
    q[above & (q <= edge)] = edge + 1
    q[~above & (q > edge)] = edge
    return q


def cut(threshold: float) -> int:
    """The highest level that is background at ``threshold``: ``q > cut`` is foreground."""
    return min(LEVELS - 1, max(0, math.floor(threshold * LEVELS)))


def summary_of(data: bytes, tta: Iterable[str], images: int) -> dict[str, Any]:
    """What a record says of its kept predictions (``Record.predictions``)."""
    return {
        "file": PREDICTIONS_NAME,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "tta": sorted(tta),
        "images": images,
    }


def encode(images: Iterable[tuple[str, Mapping[str, Any]]], threshold: float) -> bytes:
    """The file's bytes: each ``(name, {tta: probabilities (29, H, W)})`` quantized, in order."""
    buffer = io.BytesIO()
    names: list[str] = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_LZMA) as archive:
        for index, (name, by_tta) in enumerate(images):
            names.append(name)
            for tta, probabilities in sorted(by_tta.items()):
                _add(archive, f"{tta}/{index:05d}.npy", quantize(probabilities, threshold))
        _add(archive, _NAMES, np.array(names, dtype=str))
    return buffer.getvalue()


def _add(archive: zipfile.ZipFile, member: str, array: np.ndarray) -> None:
    data = io.BytesIO()
    np.lib.format.write_array(data, np.ascontiguousarray(array), allow_pickle=False)
    info = zipfile.ZipInfo(member, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_LZMA
    info.external_attr = 0o644 << 16
    archive.writestr(info, data.getvalue())


def write_predictions(
    folder: Path, images: Iterable[tuple[str, Mapping[str, Any]]], threshold: float
) -> dict[str, Any]:
    """Write ``folder/predictions.npz`` atomically; return what the record says of it."""
    names: list[str] = []
    tta: set[str] = set()

    def counted() -> Iterable[tuple[str, Mapping[str, Any]]]:
        for name, by_tta in images:
            names.append(name)
            tta.update(by_tta)
            yield name, by_tta

    data = encode(counted(), threshold)
    atomic_write_bytes(Path(folder) / PREDICTIONS_NAME, data)
    return summary_of(data, tta, len(names))


@dataclass(frozen=True)
class Kept:
    """A run's kept predictions, read as input: the file the record names, checked against
    its size and SHA-256 before any array is read; any problem is one line naming the file."""

    path: Path
    names: tuple[str, ...]
    tta: tuple[str, ...]
    _data: bytes

    @classmethod
    def open(cls, folder: Path, summary: Mapping[str, Any]) -> Kept:
        """The predictions ``summary`` (a record's ``predictions``) names in ``folder``."""
        path = Path(folder) / str(summary.get("file", PREDICTIONS_NAME))
        if Path(str(summary.get("file", ""))).name != summary.get("file"):
            raise HarnessError(f"{path}: a record's predictions must be a file in its folder")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise HarnessError(
                f"{path}: the kept predictions its record names cannot be read "
                f"({exc.strerror or exc}); copy them with the record (scripts/publish_records.py)"
            ) from None
        if len(data) != summary.get("bytes") or hashlib.sha256(data).hexdigest() != summary.get(
            "sha256"
        ):
            raise HarnessError(
                f"{path}: not the predictions its record names (size or SHA-256 differ); "
                "the file was changed or belongs to another run"
            )
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = tuple(str(n) for n in _array(archive, _NAMES))
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise HarnessError(f"{path}: not a predictions file ({exc})") from None
        return cls(path, names, tuple(summary.get("tta") or ()), data)

    def load(self, tta: str, index: int) -> np.ndarray:
        """Image ``index``'s ``uint8 (29, H, W)`` levels under test-time augmentation ``tta``."""
        member = f"{tta}/{index:05d}.npy"
        try:
            with zipfile.ZipFile(io.BytesIO(self._data)) as archive:
                array = _array(archive, member)
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise HarnessError(f"{self.path}: cannot read {member} ({exc})") from None
        if array.dtype != np.uint8 or array.ndim != 3:
            raise HarnessError(f"{self.path}: {member} is not uint8 (classes, H, W)")
        return array


def _array(archive: zipfile.ZipFile, member: str) -> np.ndarray:
    with archive.open(member) as fh:
        return np.lib.format.read_array(io.BytesIO(fh.read()), allow_pickle=False)
