"""Pictures of results: a run's training curves, per-class Dice and a validation image with
its predicted masks; a leaderboard's entries × classes heatmap.

People would rather look than read: these are written beside ``record.json`` and beside
each leaderboard (linked from its markdown), drawn with matplotlib's Agg canvas and
encoded without metadata so the same numbers give the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from matplotlib.figure import Figure

from harness.annotations import rasterize, read_annotation
from harness.classes import CLASSES
from harness.data import read_gray, to_input
from harness.dice import logits_to_masks
from harness.layout import label_path
from harness.pictures import overlay, save_figure, save_grid

CURVES = "curves.png"
PER_CLASS = "per-class-dice.png"
PREDICTION = "prediction.png"


def training_curves(history: Sequence[dict[str, float]], path: Path) -> Path:
    """Training loss per epoch and validation mean Dice where it was measured."""
    fig = Figure(figsize=(7, 3.2), dpi=100, facecolor="white")
    loss_ax, dice_ax = fig.subplots(1, 2)
    epochs = [h["epoch"] for h in history]
    loss_ax.plot(epochs, [h["loss"] for h in history], color="tab:blue")
    loss_ax.set(title="training loss", xlabel="epoch")
    val = [(h["epoch"], h["val_mean_dice"]) for h in history if "val_mean_dice" in h]
    if val:
        dice_ax.plot(*zip(*val, strict=True), marker="o", color="tab:green")
    dice_ax.set(title="validation mean Dice", xlabel="epoch", ylim=(0, 1))
    fig.tight_layout()
    save_figure(fig, path)
    return path


def per_class_bars(per_class: dict[str, float], path: Path, title: str = "") -> Path:
    """One bar per bone, in class order, with the mean as a line."""
    fig = Figure(figsize=(9, 3.4), dpi=100, facecolor="white")
    ax = fig.subplots()
    values = [per_class[c] for c in CLASSES]
    ax.bar(range(len(CLASSES)), values, color="tab:blue")
    ax.axhline(float(np.mean(values)), color="tab:red", linewidth=1, label="mean")
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=90, fontsize=7)
    ax.set(ylim=(0, 1), ylabel="Dice", title=title or "per-class Dice (final epoch)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def prediction_panel(
    image: np.ndarray, truth: np.ndarray, predicted: np.ndarray, path: Path, name: str
) -> Path:
    """A validation image, its ground truth and the predicted masks, overlaid side by side."""
    save_grid(
        path,
        [
            (name, image),
            ("ground truth", overlay(image, truth)),
            ("prediction", overlay(image, predicted)),
        ],
        columns=3,
    )
    return path


def heatmap(labels: Sequence[str], per_class: Sequence[dict[str, float]], path: Path) -> Path:
    """Entries (rows) × the 29 classes (columns), Dice as colour, values written in."""
    data = (
        np.array([[row[c] for c in CLASSES] for row in per_class])
        if per_class
        else np.zeros((0, 29))
    )
    height = 1.6 + 0.42 * max(1, len(labels))
    fig = Figure(figsize=(15, height), dpi=100, facecolor="white")
    ax = fig.subplots()
    image = ax.imshow(data, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), [_short(label) for label in labels], fontsize=7)
    for (i, j), value in np.ndenumerate(data):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=5,
                color="white" if value < 0.6 else "black")  # fmt: skip
    fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def _short(label: str, width: int = 60) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def run_pictures(
    run_dir: Path,
    history: Sequence[dict[str, float]],
    per_class: dict[str, float],
    model: torch.nn.Module | None = None,
    image_path: Path | None = None,
    resolution: int = 0,
    threshold: float = 0.5,
) -> list[Path]:
    """A run's three pictures; the prediction panel only when a model and an image are given."""
    written = [
        training_curves(history, Path(run_dir) / CURVES),
        per_class_bars(per_class, Path(run_dir) / PER_CLASS),
    ]
    if model is not None and image_path is not None and resolution:
        image = read_gray(image_path)
        truth = rasterize(read_annotation(label_path(image_path))).astype(bool)
        small = cv2.resize(image, (resolution, resolution), interpolation=cv2.INTER_AREA)
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        with torch.no_grad():
            logits = model(to_input(small)[None].to(device))[0].float()
        model.train(was_training)
        predicted = logits_to_masks(logits, image.shape, threshold).cpu().numpy()
        written.append(
            prediction_panel(image, truth, predicted, Path(run_dir) / PREDICTION, image_path.name)
        )
    return written
