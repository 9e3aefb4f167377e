"""A leaderboard's rows, aggregated from run records: one ``Row`` per entry, over its seeds
(or, cross-validated, over its folds), best mean Dice first. How sure a row is (its interval,
rank band and verdict against the leader) is ``harness.results.judging``'s.

Nothing here is formatted: the twin's data is made from rows by
``harness.results.leaderboard`` (and ``harness.results.ablation``), and the markdown and the
page are views of that data.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.classes import CLASSES
from harness.components.entry import Entry
from harness.results.records import Record
from harness.results.significance import bootstrap_se


@dataclass(frozen=True)
class Row:
    """One entry's succeeded runs, aggregated: over seeds, or (a cross-validated benchmark)
    over folds, each fold's Dice the mean over its seeds."""

    entry: Entry
    records: tuple[Record, ...]

    @property
    def cross_validated(self) -> bool:
        return any(r.fold is not None for r in self.records)

    @property
    def dice(self) -> list[float]:
        """One value per unit (seed, or fold), in unit order."""
        return list(self.by_seed().values())

    @property
    def mean(self) -> float:
        return statistics.fmean(self.dice)

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.dice) if len(self.dice) > 1 else None

    def per_class(self) -> dict[str, float]:
        return {c: statistics.fmean(r.per_class_dice[c] for r in self.records) for c in CLASSES}

    def cost(self, key: str) -> float | None:
        values = [r.cost[key] for r in self.records if r.cost.get(key) is not None]
        return statistics.fmean(values) if values else None

    @property
    def device(self) -> str:
        """The devices of the row's runs: each with its CPU's model where recorded, and
        the precision it trained in when not fp32."""
        return ", ".join(sorted({device_text(r) for r in self.records}))

    def by_seed(self) -> dict[int, float]:
        """Mean Dice per unit: per seed, or for a cross-validated row per fold (the mean over
        that fold's seeds)."""
        units: dict[int, list[float]] = {}
        for r in sorted(self.records, key=_unit_order):
            if r.mean_dice is not None:
                units.setdefault(_unit(r), []).append(float(r.mean_dice))
        return {unit: statistics.fmean(values) for unit, values in units.items()}

    def per_image(self, seed: int) -> dict[str, float]:
        """Mean over classes of each validation image's Dice, for one unit (seed or fold)."""
        for r in sorted(self.records, key=_unit_order):
            if _unit(r) == seed and r.per_image_dice and len(r.val_images) == len(r.per_image_dice):
                return {
                    name: statistics.fmean(scores)
                    for name, scores in zip(r.val_images, r.per_image_dice, strict=True)
                }
        return {}

    def noise(self) -> tuple[float | None, bool]:
        """The ± of the row: std over seeds (or folds), or (one unit) the bootstrap s.e. over
        images."""
        if len(self.dice) > 1:
            return self.std, False
        images = self.per_image(next(iter(self.by_seed()), self.records[0].seed))
        return bootstrap_se(list(images.values())), True

    def device_hours(self) -> float | None:
        """Summed over seeds; a run on N processes (devices) counts N times its wall time; a
        tuned entry adds its tuning trials' device-hours (once: every seed shares them)."""
        values = [r.cost.get("wall_s") for r in self.records]
        if any(v is None for v in values):
            return None
        seeds = sum(
            v * int(r.cost.get("processes") or 1) for v, r in zip(values, self.records, strict=True)
        )
        return seeds / 3600 + self.trial_device_hours

    @property
    def trial_device_hours(self) -> float:
        """What the tuning trials of a tuned entry cost (0 for an entry that was not tuned)."""
        return max((float(r.tuning.get("trial_device_hours", 0)) for r in self.records), default=0)

    @property
    def chosen(self) -> dict[str, float]:
        """The values tuning chose for the entry (its records' ``tuning.chosen.values``: a
        component's own, ``optimizer.momentum``, too), else its own hyperparameters."""
        for r in self.records:
            values = (r.tuning.get("chosen") or {}).get("values")
            if values:
                return {str(k): float(v) for k, v in values.items()}
        return {k: v for k, v in self.entry.hparams}

    @property
    def budget(self) -> str:
        """The tuning budget of the row in words (``fixed`` for the protocol's values)."""
        for r in self.records:
            if r.tuning.get("budget"):
                return str(r.tuning["budget"])
        if self.entry.hparams:
            return "set by hand (--hparam)"
        return "fixed (the protocol's values)"

    def small_bone_dice(self, small: Sequence[str]) -> float | None:
        if not small:
            return None
        per_class = self.per_class()
        return statistics.fmean(per_class[c] for c in small)


def _unit(record: Record) -> int:
    """What a row's noise test pairs by: the fold of a cross-validated run, else the seed."""
    return record.seed if record.fold is None else record.fold


def _unit_order(record: Record) -> tuple[int, int]:
    return (_unit(record), record.seed)


def device_text(record: Record) -> str:
    """A run's device as the Device column shows it: ``cpu (2 threads)``, with the CPU's
    model where the record names it (``cpu (2 threads) · AMD EPYC``) and the precision it
    trained in when not fp32 (``NVIDIA A100 · bf16``)."""
    device = str(record.cost.get("device", "?"))
    model = record.hardware.get("cpu", {}).get("model") if record.hardware else None
    if model and not record.hardware.get("gpus"):
        device = f"{device} · {model}"
    precision = record.cost.get("precision")
    return device if precision in (None, "fp32") else f"{device} · {precision}"


def precisions(table_rows: Sequence[Row]) -> list[str]:
    """The precisions the table's runs trained in (a record without one is not counted)."""
    found = {r.cost.get("precision") for row in table_rows for r in row.records}
    return sorted(str(p) for p in found if p is not None)


def rows(records: Iterable[Record], benchmark_id: str) -> list[Row]:
    """Succeeded records of one benchmark, grouped by entry, best mean Dice first."""
    groups: dict[str, list[Record]] = defaultdict(list)
    entries: dict[str, Entry] = {}
    for record in records:
        if record.status != "succeeded" or record.benchmark.get("id") != benchmark_id:
            continue
        entry = entry_of(record)
        groups[entry.key].append(record)
        entries[entry.key] = entry
    out = [Row(entries[k], tuple(sorted(v, key=lambda r: r.seed))) for k, v in groups.items()]
    return sorted(out, key=lambda r: (-r.mean, r.entry.label))


def entry_of(record: Record) -> Entry:
    """A record's entry as a leaderboard keys it (names and parameters, not versions)."""
    return Entry.from_dict(_names_only(record.entry))


def _names_only(entry: dict) -> dict:
    """An entry as the leaderboard keys it: names and parameters, not provider versions."""
    return {
        k: (
            {"name": v["name"], "params": v.get("params", {})}
            if isinstance(v, dict) and "name" in v
            else v
        )
        for k, v in entry.items()
    }
