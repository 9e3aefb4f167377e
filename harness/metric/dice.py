"""The competition metric, exactly, in one place.

Per image and class ``(2|P∩G| + 1e-4) / (|P| + |G| + 1e-4)`` on binary masks at the
image's original resolution; a prediction given as logits is upsampled bilinearly
(``align_corners=False``) to that resolution in float32, passed through a sigmoid and
kept where it is strictly above the threshold.  Scores are averaged over images per
class, then over classes.  Training-time validation, ``harness evaluate`` and the
leaderboards all score through this module, so their numbers agree to the last digit.

The accumulator streams: it keeps one row of 29 floats per image, never a mask, so a
full validation fold at 2048² fits in memory.  Pixel counts are integer counts (a
float32 sum of a 2048² mask is not exact in general).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from harness.classes import CLASSES

EPS = 1e-4

#: Channels upsampled at once: bounds the float32 scratch memory (4 x 2048² x 4 B = 64 MiB).
_CHUNK = 4


def _as_bool(mask: torch.Tensor) -> torch.Tensor:
    return mask if mask.dtype == torch.bool else mask != 0


def _counts_cpu(pred: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, ...]:
    # numpy's count_nonzero is several times faster than torch's on CPU; per channel keeps
    # the scratch buffer small.
    p, g = pred.numpy(), target.numpy()
    channels = p.shape[0]
    inter = np.empty(channels, dtype=np.int64)
    size_p = np.empty(channels, dtype=np.int64)
    size_g = np.empty(channels, dtype=np.int64)
    scratch = np.empty(p.shape[1:], dtype=bool)
    for c in range(channels):
        np.logical_and(p[c], g[c], out=scratch)
        inter[c] = np.count_nonzero(scratch)
        size_p[c] = np.count_nonzero(p[c])
        size_g[c] = np.count_nonzero(g[c])
    return inter, size_p, size_g


def dice_scores(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-class Dice of one image: bool ``(C, H, W)`` masks -> float64 ``(C,)`` on their device.

    Non-bool masks are read as ``!= 0``.  An empty prediction on an empty truth scores 1.
    """
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(
            f"pred and target must both be (C, H, W); got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    if pred.device != target.device:
        raise ValueError(f"pred is on {pred.device} but target is on {target.device}")
    pred, target = _as_bool(pred.detach()), _as_bool(target.detach())
    if pred.device.type == "cpu":
        inter, size_p, size_g = (torch.from_numpy(a) for a in _counts_cpu(pred, target))
    else:
        flat_p = pred.reshape(pred.shape[0], -1)
        flat_g = target.reshape(target.shape[0], -1)
        inter = torch.count_nonzero(flat_p & flat_g, dim=1)
        size_p = torch.count_nonzero(flat_p, dim=1)
        size_g = torch.count_nonzero(flat_g, dim=1)
    inter, size_p, size_g = (t.to(torch.float64) for t in (inter, size_p, size_g))
    return (2.0 * inter + EPS) / (size_p + size_g + EPS)


def logits_to_masks(
    logits: torch.Tensor, size: tuple[int, int], threshold: float = 0.5
) -> torch.Tensor:
    """Bool ``(C, H, W)`` masks from ``(C, h, w)`` logits, exactly as the metric reads them.

    Upsampled in float32 (bilinear, ``align_corners=False``) a few channels at a time,
    then ``sigmoid(x) > threshold``: a probability of exactly the threshold is background.
    """
    out = torch.empty((logits.shape[0], *size), dtype=torch.bool, device=logits.device)
    with torch.no_grad():
        for start, chunk, upsampled in _float_chunks(logits, size):
            # never in place unless upsampled here: the chunk may be the caller's tensor
            chunk = chunk.sigmoid_() if upsampled else torch.sigmoid(chunk)
            torch.gt(chunk, threshold, out=out[start : start + _CHUNK])
    return out


def logits_to_probabilities(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Float32 ``(C, H, W)`` probabilities from ``(C, h, w)`` logits: what ``logits_to_masks``
    thresholds, value for value (upsampled in float32, bilinear, ``align_corners=False``,
    a few channels at a time, then the sigmoid)."""
    out = torch.empty((logits.shape[0], *size), dtype=torch.float32, device=logits.device)
    with torch.no_grad():
        for start, chunk, _ in _float_chunks(logits, size):
            torch.sigmoid(chunk, out=out[start : start + _CHUNK])
    return out


def _float_chunks(
    logits: torch.Tensor, size: tuple[int, int]
) -> Iterator[tuple[int, torch.Tensor, bool]]:
    """``(C, h, w)`` logits a few channels at a time, in float32 at ``size`` (bilinear,
    ``align_corners=False``): each chunk's first channel, the chunk, and whether it was
    upsampled here (a new tensor) rather than the caller's own."""
    if logits.dim() != 3:
        raise ValueError(f"logits must be (C, h, w); got {tuple(logits.shape)}")
    for start in range(0, logits.shape[0], _CHUNK):
        chunk = logits[start : start + _CHUNK].detach().float()
        if tuple(chunk.shape[1:]) == tuple(size):
            yield start, chunk, False
        else:
            yield (
                start,
                F.interpolate(chunk[None], size=size, mode="bilinear", align_corners=False)[0],
                True,
            )


class DiceAccumulator:
    """Streams images through the metric and keeps only their per-class score rows."""

    def __init__(self, class_names: Sequence[str] = CLASSES, threshold: float = 0.5) -> None:
        self.class_names: tuple[str, ...] = tuple(class_names)
        self.threshold = float(threshold)
        self._rows: list[np.ndarray] = []
        self._names: list[str | None] = []

    @classmethod
    def from_rows(
        cls,
        rows: np.ndarray,
        names: Sequence[str | None],
        class_names: Sequence[str] = CLASSES,
        threshold: float = 0.5,
    ) -> DiceAccumulator:
        """An accumulator holding score rows computed elsewhere (another rank), in order."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(class_names) or len(names) != len(rows):
            raise ValueError(
                f"expected ({len(names)}, {len(class_names)}) score rows, got {rows.shape}"
            )
        scores = cls(class_names, threshold)
        scores._rows = [row.copy() for row in rows]
        scores._names = list(names)
        return scores

    def _check(self, pred_shape: torch.Size, target: torch.Tensor) -> None:
        channels = len(self.class_names)
        if (
            len(pred_shape) != 3
            or target.dim() != 3
            or target.shape[0] != channels
            or pred_shape[0] != channels
        ):
            raise ValueError(
                f"expected {channels} channels as (C, H, W); got prediction "
                f"{tuple(pred_shape)} and target {tuple(target.shape)}"
            )

    def add_logits(
        self, logits: torch.Tensor, target: torch.Tensor, name: str | None = None
    ) -> torch.Tensor:
        """Score one image from ``(C, h, w)`` logits against its ``(C, H, W)`` truth.

        The logits are upsampled to the truth's size; the truth moves to the logits' device.
        Returns this image's ``(C,)`` float64 scores (on the CPU).
        """
        self._check(logits.shape, target)
        target = target.to(logits.device)
        pred = logits_to_masks(logits, (target.shape[1], target.shape[2]), self.threshold)
        return self._add(dice_scores(pred, target), name)

    def add_masks(
        self, pred: torch.Tensor, target: torch.Tensor, name: str | None = None
    ) -> torch.Tensor:
        """Score one image from binary ``(C, H, W)`` masks (bool, or integers read as ``!= 0``)."""
        self._check(pred.shape, target)
        return self._add(dice_scores(pred, target.to(pred.device)), name)

    def _add(self, scores: torch.Tensor, name: str | None) -> torch.Tensor:
        scores = scores.cpu()
        self._rows.append(scores.numpy().copy())
        self._names.append(name)
        return scores

    @property
    def count(self) -> int:
        """Images scored so far."""
        return len(self._rows)

    @property
    def names(self) -> tuple[str | None, ...]:
        """The ``name`` given with each image, in the order added (``None`` where none was)."""
        return tuple(self._names)

    def per_image(self) -> np.ndarray:
        """``(n_images, C)`` float64: one row of per-class scores per image, in the order added."""
        if not self._rows:
            return np.empty((0, len(self.class_names)), dtype=np.float64)
        return np.stack(self._rows)

    def per_class(self) -> dict[str, float]:
        """Each class's Dice averaged over images."""
        if not self._rows:
            raise ValueError("no images scored yet")
        means = self.per_image().mean(axis=0)
        return {name: float(v) for name, v in zip(self.class_names, means, strict=True)}

    def mean(self) -> float:
        """The competition score: per-class means (over images) averaged over classes."""
        return float(np.mean(list(self.per_class().values())))
