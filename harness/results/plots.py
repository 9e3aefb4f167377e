"""The pictures a table's page draws (``page.js``, inline SVG), made from its twin's rows: each
row's 95 % interval of its mean Dice as a forest plot, the leader's interval shaded across it;
and, on a leaderboard, mean Dice against a cost (GFLOPs or inference images/s, chosen on the
page) with its Pareto front. Everything a picture shows is decided here, from the twin's
values as they are (the script scales and draws; the points carry those values as data
attributes, so a test reads them back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Row = Mapping[str, Any]
Plot = dict[str, Any]

#: The costs a leaderboard's page plots Dice against: its name on the page, the key of the
#: twin's row, and whether less is better.
COSTS = (("GFLOPs", "gflops", True), ("Infer img/s", "inference_images_per_s", False))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def forest(rows: Sequence[Row], labels: Sequence[str], leader: int | None) -> Plot | None:
    """Each row's mean Dice and 95 % interval (a row without one: its mean alone), in the
    table's order, labelled by ``labels``; ``leader``: the row whose interval is shaded. None
    when no row has an interval."""
    if not any(r.get("interval") for r in rows):
        return None
    items = []
    for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
        mean = _number(row.get("mean_dice"))
        if mean is None:
            continue
        interval = row.get("interval") or [None, None]
        items.append(
            {"i": i, "label": label, "title": str(row.get("entry") or label), "mean": mean,
             "low": interval[0], "high": interval[1]}
        )  # fmt: skip
    shaded = rows[leader].get("interval") if leader is not None else None
    return {
        "kind": "forest",
        "title": "95 % CI of each row's true mean Dice (the leader's shaded)",
        "rows": items,
        "shaded": None if not shaded else {"i": leader, "low": shaded[0], "high": shaded[1]},
    }


def pareto(points: Sequence[tuple[int, float, float]], less_is_better: bool) -> list[int]:
    """The rows (``(row, cost, dice)``) on the Pareto front: those no other row beats on both,
    Dice at least as high and the cost at least as good, one of them strictly; by cost, the
    best first."""
    sign = 1 if less_is_better else -1
    front = [
        (sign * x, -y, i)
        for i, x, y in points
        if not any(
            yo >= y and sign * xo <= sign * x and (yo > y or sign * xo < sign * x)
            for _, xo, yo in points
        )
    ]
    return [i for _, _, i in sorted(front)]


def cost(rows: Sequence[Row], labels: Sequence[str]) -> Plot:
    """Mean Dice against each cost that some row measured (none: the page says so), with the
    rows on each one's Pareto front and how many rows lack it."""
    axes = []
    for name, key, less in COSTS:
        pairs = [(i, _number(r.get(key)), _number(r.get("mean_dice"))) for i, r in enumerate(rows)]
        points = [(i, x, y) for i, x, y in pairs if x is not None and y is not None]
        if not points:
            continue
        axes.append(
            {
                "name": name,
                "key": key,
                "less_is_better": less,
                "points": [{"i": i, "label": labels[i], "title": str(rows[i].get("entry") or
                            labels[i]), "x": x, "y": y} for i, x, y in points],
                "front": pareto(points, less),
                "missing": len(rows) - len(points),
            }
        )  # fmt: skip
    return {
        "kind": "cost",
        "title": "Mean Dice against cost (the Pareto front joined)",
        "axes": axes,
        "empty": "no row's GFLOPs or inference images/s were measured (the records predate them)",
    }
