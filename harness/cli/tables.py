"""Tables the command line prints: the library returns numbers, these draw them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from harness.classes import CLASSES

if TYPE_CHECKING:  # the statistics pull in OpenCV and matplotlib: only ``data stats`` pays
    from harness.data.stats import DatasetStats
    from harness.studies.tune import TuneOutcome


def per_class_table(per_class: dict[str, float], title: str | Text) -> Table:
    """Per-class Dice in three column pairs (the 29 classes in ``CLASSES`` order)."""
    table = Table(title=title)
    for _ in range(3):
        table.add_column("Class")
        table.add_column("Dice", justify="right")
    names = list(CLASSES)
    third = (len(names) + 2) // 3
    for i in range(third):
        cells: list[str] = []
        for col in range(3):
            j = i + col * third
            if j < len(names):
                cells += [names[j], f"{per_class[names[j]]:.4f}"]
            else:
                cells += ["", ""]
        table.add_row(*cells)
    return table


def _pct(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}"


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def stats_table(stats: DatasetStats) -> Table:
    """The per-class table of ``harness data stats``, the dataset-wide figures in its caption."""
    doc = stats.to_json()
    small = set(doc["small_bones"]["classes"])
    table = Table(
        title=Text(
            f"{doc['dataset']['images']} images in {doc['dataset']['ids']} ID folders "
            f"({stats.root}, {stats.split})"
        ),
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("Class")
    for name in ("Mean %", "Min %", "Max %", "Images", "Contrast", "Weber", "CNR"):
        table.add_column(name, justify="right")
    table.add_column("Small", justify="center")
    for row in doc["classes"]:
        table.add_row(
            row["class"],
            _pct(row["mean_share"]),
            _pct(row["min_share"]),
            _pct(row["max_share"]),
            str(row["images"]),
            _num(row["contrast"]["mean"], ".1f"),
            _num(row["weber"]["mean"], ".2f"),
            _num(row["cnr"]["mean"], ".2f"),
            "✓" if row["class"] in small else "",
        )
    table.caption = Text("\n".join(_stats_caption(doc)))
    return table


def _stats_caption(doc: dict) -> list[str]:
    from harness.data.stats import SMALL_BONE_COUNT

    angle = doc["wrist_angle"]
    hands = doc["hands"]
    inten = doc["intensity"]
    lines = []
    if angle["count"]:
        lines.append(
            f"Wrist angle: mean {angle['mean']:+.1f}°, std {angle['std']:.1f}°, "
            f"range {angle['min']:+.1f}° to {angle['max']:+.1f}° ({angle['count']} images)"
        )
    lines.append(
        f"Hands: {hands['right']} right, {hands['left']} left, {hands['unknown']} unknown; "
        f"{hands['ids_with_one_of_each']} of {len(hands['by_id'])} ID folders have one of each"
    )
    if inten["all"]["pixels"]:
        p = inten["all"]["percentiles"]
        bone, rest = inten["bone"]["mean"], inten["not_bone"]["mean"]
        lines.append(
            f"Grey levels: mean {inten['all']['mean']:.1f}, std {inten['all']['std']:.1f}, "
            f"p1/p50/p99 {p['p1']}/{p['p50']}/{p['p99']}; inside bones "
            f"{_num(bone, '.1f')}, elsewhere {_num(rest, '.1f')}"
        )
    overlaps = doc["overlaps"]
    if overlaps:
        top = ", ".join(
            f"{o['a']}/{o['b']} {o['mean_fraction_of_smaller'] * 100:.0f}% of the smaller "
            f"({o['images']} img)"
            for o in overlaps[:4]
        )
        lines.append(f"Overlaps: {len(overlaps)} pairs; largest {top}")
    else:
        lines.append("Overlaps: none")
    lines.append(
        f"Small bones ({SMALL_BONE_COUNT} smallest by mean area): "
        + ", ".join(doc["small_bones"]["classes"])
    )
    return lines


def trials_table(outcome: TuneOutcome) -> Table:
    """Every tuning trial: its values, its Dice on the tuning fold, its cost; the chosen marked."""
    names = [k for k, _ in outcome.tuning.space]
    staged = len(outcome.rungs) > 1
    table = Table(
        title=Text(
            f"Tuning: {len(outcome.trials)} trials on fold {outcome.tuning.fold} "
            f"(study {outcome.folder})"
        )
    )
    table.add_column("Trial", justify="right")
    if staged:
        table.add_column("Epochs", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("Dice", justify="right")
    table.add_column("Device-hours", justify="right")
    table.add_column("")
    for trial in outcome.trials:
        table.add_row(
            str(trial.number + 1),
            *([str(trial.epochs)] if staged else []),
            *(f"{trial.values[n]:.3g}" for n in names),
            _num(trial.dice, ".4f") if trial.dice is not None else "failed",
            f"{trial.device_hours:.4f}",
            "chosen" if trial is outcome.chosen else "",
        )
    return table
