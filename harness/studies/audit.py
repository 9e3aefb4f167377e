"""The audit of successive halving's choice (``harness tune --audit``): does a short, compressed
run rank configurations as the full horizon does, and what does halving's choice cost?

The audit trains every configuration of a halving study at the full horizon as well (on the
tuning fold, like every trial), then measures, beside the study (``audit.json``,
``audit.png``):

- for each rung, Kendall's τ (``scipy.stats.kendalltau``, τ-b) between the rung's Dice and
  the full-horizon Dice of the configurations that trained at that rung;
- the regret: the full-horizon Dice of the best configuration minus that of halving's choice
  (0 when halving chose the best; a configuration whose full run failed scores 0);
- for each, a percentile bootstrap interval over configurations (``RESAMPLES`` resamples with
  replacement, seeded with the budget's seed, so the same records give the same bytes). In a
  resample the regret is that of the configuration halving's order ranks first among those
  drawn (deepest rung reached, then the Dice there, then the lower number);
- and the rule adopted before any study was audited (docs/tuning.md): halving is kept where
  the first rung's τ is at least ``TAU_MIN`` and the regret at most ``REGRET_MAX``, else the
  budget falls back to ``schedule = "full"``.

The statistics are pure functions over scores (in, out: numbers), as rliable's are; this
module only also writes the two files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import atomic_write_text
from harness.pictures.charts import AuditPanel, audit_scatter
from harness.studies.halving import Rung

#: The files beside the study.
AUDIT_JSON = "audit.json"
AUDIT_PNG = "audit.png"
#: The rule: halving is kept where the first rung's τ reaches this ...
TAU_MIN = 0.6
#: ... and its choice loses at most this much full-horizon Dice (half a row's seed noise).
REGRET_MAX = 0.01
#: Bootstrap resamples and the interval's level.
RESAMPLES = 2000
LEVEL = 0.95
FORMAT = "harness-tuning-audit/1"


@dataclass(frozen=True)
class Scores:
    """One configuration's Dice: at each rung it trained (by rung index; None: failed) and at
    the full horizon (None: failed)."""

    number: int
    values: Mapping[str, float]
    rungs: Mapping[int, float | None] = field(default_factory=dict)
    full: float | None = None

    def order_key(self) -> tuple[int, float, int]:
        """Halving's order: the deepest rung it trained at with success, its Dice there, then
        the lower number (the greatest key is chosen)."""
        done = [(k, d) for k, d in self.rungs.items() if d is not None]
        if not done:
            return (-1, 0.0, -self.number)
        deepest, dice = max(done)
        return (deepest, dice, -self.number)


def kendall(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's τ-b between ``x`` and ``y`` (None: fewer than 3 pairs, or no order in one)."""
    from scipy.stats import kendalltau

    if len(x) < 3:
        return None
    tau = kendalltau(x, y).statistic
    return None if not np.isfinite(tau) else float(tau)


def chosen(configs: Sequence[Scores]) -> Scores:
    """The configuration halving's order ranks first."""
    return max(configs, key=Scores.order_key)


def regret(configs: Sequence[Scores]) -> float:
    """The best full-horizon Dice minus that of halving's choice (a failed run scores 0)."""
    full = [c.full or 0.0 for c in configs]
    return max(full) - (chosen(configs).full or 0.0)


def interval(
    statistic: Callable[[list[int]], float | None], n: int, seed: int
) -> list[float] | None:
    """The ``LEVEL`` percentile bootstrap interval of ``statistic`` over ``n`` items
    (``statistic`` takes the drawn indices; a draw where it is None is left out; None when
    most are)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(RESAMPLES, n))
    found = [v for row in draws if (v := statistic(row.tolist())) is not None]
    if len(found) < RESAMPLES / 2:
        return None
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(found, [tail, 100 - tail])
    return [float(low), float(high)]


def agreement(configs: Sequence[Scores], rung: Rung, seed: int) -> dict[str, Any]:
    """τ between ``rung``'s Dice and the full-horizon Dice, with its interval."""
    pairs = [
        (c.rungs[rung.index], c.full)
        for c in configs
        if c.rungs.get(rung.index) is not None and c.full is not None
    ]
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]

    def tau(rows: list[int]) -> float | None:
        return kendall([xs[i] for i in rows], [ys[i] for i in rows])

    return {
        "rung": rung.index + 1,
        "epochs": rung.epochs,
        "configs": rung.configs,
        "pairs": len(pairs),
        "kendall_tau": kendall(xs, ys),
        "interval": interval(tau, len(pairs), seed) if len(pairs) >= 3 else None,
    }


def audit(configs: Sequence[Scores], schedule: Sequence[Rung], seed: int) -> dict[str, Any]:
    """The audit of ``configs`` (every configuration, with its rungs' and full Dice) under
    ``schedule``, with the rule's verdict, as ``audit.json`` holds it."""
    pick = chosen(configs)
    best = max(configs, key=lambda c: (c.full or 0.0, -c.number))
    rungs = [agreement(configs, r, seed) for r in schedule]
    lost = regret(configs)

    def resampled(rows: list[int]) -> float:
        return regret([configs[i] for i in rows])

    tau = rungs[0]["kendall_tau"]
    keep = tau is not None and tau >= TAU_MIN and lost <= REGRET_MAX
    return {
        "format": FORMAT,
        "configs": [
            {
                "number": c.number,
                "values": dict(c.values),
                "rungs": {str(schedule[k].epochs): d for k, d in sorted(c.rungs.items())},
                "full_dice": c.full,
            }
            for c in configs
        ],
        "rungs": rungs,
        "chosen": {"number": pick.number, "full_dice": pick.full},
        "best": {"number": best.number, "full_dice": best.full},
        "regret": lost,
        "regret_interval": interval(resampled, len(configs), seed),
        "bootstrap": {
            "resamples": RESAMPLES,
            "level": LEVEL,
            "seed": seed,
            "over": "configurations",
        },
        "rule": {
            "tau_min": TAU_MIN,
            "regret_max": REGRET_MAX,
            "keep_halving": keep,
            "text": rule_text(keep),
        },
    }


def rule_text(keep: bool) -> str:
    """The rule, and what it says here."""
    verdict = "keep halving" if keep else 'fall back to schedule = "full"'
    return (
        f"keep halving where the first rung's Kendall tau >= {TAU_MIN} and the regret <= "
        f"{REGRET_MAX} Dice, else fall back to full: {verdict}"
    )


def write(folder: Path, report: Mapping[str, Any], title: str) -> tuple[Path, Path]:
    """``audit.json`` and ``audit.png`` beside the study in ``folder``."""
    path = folder / AUDIT_JSON
    atomic_write_text(path, json.dumps(report, indent=2, sort_keys=True) + "\n")
    full = {c["number"]: c["full_dice"] for c in report["configs"]}
    pick = report["chosen"]["number"]
    panels: list[AuditPanel] = []
    for rung in report["rungs"]:
        key = str(rung["epochs"])
        points = [
            (c["rungs"][key], full[c["number"]], c["number"] == pick)
            for c in report["configs"]
            if c["rungs"].get(key) is not None and full[c["number"]] is not None
        ]
        tau = rung["kendall_tau"]
        shown = "—" if tau is None else f"{tau:.2f}"
        panels.append((f"rung {rung['rung']} ({rung['epochs']} epochs): τ {shown}", points))
    picture = audit_scatter(panels, folder / AUDIT_PNG, f"{title}: regret {report['regret']:.4f}")
    return path, picture
