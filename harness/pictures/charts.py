"""Charts: a run's training curves and per-class Dice bars, a leaderboard's heatmap, a tuned
entry's Dice against each tuned value, a halving study's rungs against the full horizon.

People would rather look than read: these are written beside ``record.json`` and beside
each leaderboard (linked from its markdown), drawn with matplotlib's Agg canvas (never
pyplot: no global state, no display) and encoded without metadata so the same numbers
give the same bytes. Only numpy and matplotlib are loaded to draw them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.atomic import atomic_write_bytes
from harness.classes import CLASSES

CURVES = "curves.png"
PER_CLASS = "per-class-dice.png"
TUNING = "tuning.png"


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


_STAR = {"marker": "*", "s": 160, "edgecolors": "black", "zorder": 3}
TrialPoint = tuple[dict[str, float], float | None]  # a trial's values and Dice (None: failed)
#: A label, its trials and the chosen one (None: every trial failed).
TrialSeries = tuple[str, Sequence[TrialPoint], TrialPoint | None]


def tuning_curves(
    series: Sequence[TrialSeries],
    space: Sequence[tuple[str, float, float, bool]],
    path: Path,
    title: str = "",
) -> Path:
    """One panel per tuned field (``space``: name, low, high, log): each trial's Dice against
    its value over the field's whole range (log axis where it was sampled on one), the chosen
    trial a star; a failed trial (Dice None) is an x at 0. A component that only works in a
    narrow band shows as one narrow peak. One colour per entry in ``series``: one entry for
    a tuned entry's own picture, every value of an axis for ``harness tune --vary``."""
    several = len(series) > 1
    width = 3.6 * len(space) + (2.2 if several else 0.4)
    # A long budget (a halving study's) wraps to the picture's width, about 13 characters
    # an inch at this size, instead of running off both edges.
    heading = textwrap.wrap(
        literal(title) if title else "Dice of each tuning trial", int(13 * width)
    )
    fig = Figure(figsize=(width, 3.2 + 0.16 * (len(heading) - 1)), dpi=100)
    fig.set_facecolor("white")
    axes = fig.subplots(1, len(space), squeeze=False)[0]
    for ax, (name, low, high, log) in zip(axes, space, strict=True):
        for i, (label, trials, best) in enumerate(series):
            chosen, chosen_dice = best if best is not None else ({}, None)
            color = f"C{i}" if several else "tab:blue"
            # A value of ``tune --vary`` whose space lacks ``name`` has no point here.
            done = [(v[name], d) for v, d in trials if d is not None and name in v]
            failed = [v[name] for v, d in trials if d is None and name in v]
            if done:
                ax.scatter(*zip(*done, strict=True), color=color, label=literal(label) or "trial")
            if failed:
                failed_label = None if several else "failed"
                ax.scatter(failed, [0.0] * len(failed), marker="x", color=color, label=failed_label)
            if name in chosen and chosen_dice is not None:
                ax.scatter([chosen[name]], [chosen_dice], color=color, **_STAR)
        ax.scatter([], [], color="white", label="chosen", **_STAR)  # the legend's entry
        if log:
            ax.set_xscale("log")
        # A default outside the range (a halving study's first configuration) stays in view.
        shown = [v[name] for _, trials, _ in series for v, _ in trials if name in v]
        low, high = min([low, *shown]), max([high, *shown])
        ax.set(xlabel=name, ylabel="validation mean Dice", ylim=(0, 1), xlim=(low, high))
    if several:
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=7)
    else:
        axes[-1].legend(loc="lower right", fontsize=7)
    fig.suptitle("\n".join(heading), fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return path


#: A panel of the audit picture: its title and points (rung Dice, full Dice, chosen).
AuditPanel = tuple[str, Sequence[tuple[float, float, bool]]]


def audit_scatter(panels: Sequence[AuditPanel], path: Path, title: str = "") -> Path:
    """One panel per rung of a successive-halving study: each configuration's Dice at the
    rung against its Dice at the full horizon, halving's choice a star, the diagonal dotted.
    A rung that ranks configurations as the full horizon does shows as a rising cloud."""
    fig = Figure(figsize=(3.2 * max(1, len(panels)) + 0.4, 3.2), dpi=100, facecolor="white")
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (name, points) in zip(axes, panels, strict=False):
        plain = [(x, y) for x, y, star in points if not star]
        picked = [(x, y) for x, y, star in points if star]
        if plain:
            ax.scatter(*zip(*plain, strict=True), color="tab:blue", label="configuration")
        if picked:
            ax.scatter(*zip(*picked, strict=True), color="tab:orange", label="chosen", **_STAR)
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Dice at the rung", ylabel="Dice at full horizon")
        ax.set_title(literal(name), fontsize=8)
    axes[-1].legend(loc="lower right", fontsize=7)
    fig.suptitle(
        literal(title) if title else "Halving's rungs against the full horizon", fontsize=9
    )
    fig.tight_layout()
    save_figure(fig, path)
    return path


def heatmap(labels: Sequence[str], per_class: Sequence[dict[str, float]], path: Path) -> Path:
    """Entries (rows) × the 29 classes (columns), Dice as colour, values written in."""
    atomic_write_bytes(path, heatmap_png(labels, per_class))
    return path


def heatmap_png(labels: Sequence[str], per_class: Sequence[Mapping[str, float]]) -> bytes:
    """``heatmap``'s picture as PNG bytes (for a table's files, written all together)."""
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
    return figure_png(fig)


def _short(label: str, width: int = 60) -> str:
    return literal(label if len(label) <= width else label[: width - 1] + "…")


def literal(text: str) -> str:
    """``text`` as matplotlib shows it, never as mathtext (``$x$`` is text, not a formula that
    may not even parse): every ``$`` escaped."""
    return text.replace("$", r"\$")


def save_figure(fig: Figure, path: Path) -> None:
    """Render a figure (Agg) to a metadata-free PNG, atomically: same figure, same bytes."""
    atomic_write_bytes(Path(path), figure_png(fig))


def figure_png(fig: Figure) -> bytes:
    """A figure rendered (Agg) as a metadata-free PNG: same figure, same bytes."""
    import cv2  # only to encode: tables are rendered without loading OpenCV

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[:, :, :3]
    ok, png = cv2.imencode(".png", rgb[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise ValueError("could not encode the picture as PNG")
    return png.tobytes()
