"""Comparing two tables: align rows by entry, show deltas, flag noise.

Two leaderboards are aligned by entry; two ablation tables of one axis (``harness sweep``'s
and ``harness tune --vary``'s, say a branch's against the published one, or a fixed and a
tuned ablation) by the axis's value, each value's row as its table holds it.

A plugin author compares a table from their branch with the published one, in CI with
``--fail-below``. Rows of two benchmarks (another protocol hash, another dataset) are not
comparable: ``compare`` refuses them in one line naming both benchmarks and what differs,
unless asked across benchmarks, when the comparison carries what differs for every view.

A table is read from its JSON twin (``<table>.json``, the data ``harness.results.leaderboard``
writes beside the markdown): given the twin, or given the markdown with its twin beside it.
Only a table written before twins existed is read from its markdown
(``harness.results.legacy``). Whether a delta is real is decided by the rule family of the
tables' own verdicts: each twin keeps its noise model (``harness.results.judging``), and
``harness.results.noise.compare`` gives every entry both tables model its simultaneous
interval (``significance.difference_method``); an entry either table does not model (a table
from before noise models, a row without per-image Dice) has noise unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, visible
from harness.results import noise
from harness.results.judging import model_of
from harness.results.legacy import benchmark_of, leaderboard_rows
from harness.results.markdown import setting_text
from harness.results.significance import difference_verdict
from harness.results.tables import load_twin, twin_path


@dataclass(frozen=True)
class TableRow:
    """The numbers of one leaderboard row that a comparison needs."""

    entry: str
    mean: float
    noise: float | None
    n: int
    params_m: float | None
    images_per_s: float | None
    peak_mb: float | None
    #: The row's 95 % interval of its true mean Dice (None: none in the table).
    interval: tuple[float, float] | None = None


@dataclass(frozen=True)
class Delta:
    """Row ``entry`` in both tables: B minus A, and (``test``: None when either table does
    not model the row) its simultaneous interval and whether it is real."""

    entry: str
    a: TableRow
    b: TableRow
    test: noise.Difference | None = None

    @property
    def dice(self) -> float:
        return self.b.mean - self.a.mean

    @property
    def real(self) -> bool | None:
        """Whether the difference is real (its interval excludes 0); None: noise unknown."""
        return None if self.test is None else self.test.real

    def cost(self, field: str) -> float | None:
        x, y = getattr(self.a, field), getattr(self.b, field)
        return None if x is None or y is None else y - x

    def data(self) -> dict[str, Any]:
        """The delta as ``harness compare``'s columns read it (``harness.results.columns``)."""
        test = self.test
        return {
            "entry": self.entry,
            "a_dice": self.a.mean,
            "b_dice": self.b.mean,
            "dice": self.dice,
            "low": None if test is None else test.low,
            "high": None if test is None else test.high,
            "p_value": None if test is None else test.p_value,
            "noise": difference_verdict(self.real),
            "images_per_s": self.cost("images_per_s"),
            "peak_mb": self.cost("peak_mb"),
        }


@dataclass(frozen=True)
class Comparison:
    deltas: list[Delta]
    only_a: list[str]
    only_b: list[str]
    #: The two tables' benchmarks, by id (or protocol and hash, for a table without a twin).
    benchmarks: tuple[str, str] = ("", "")
    #: What differs between the two benchmarks (none: the same benchmark, or unknown).
    differences: tuple[str, ...] = ()
    #: Why a table has no noise model, one line each (``A: ...``).
    unmodelled: tuple[str, ...] = field(default=())
    #: The axis of two ablation tables, whose rows are aligned by its values (None: two
    #: leaderboards, aligned by entry).
    axis: str | None = None

    @property
    def tested(self) -> int:
        """How many shared entries were tested (both tables model them)."""
        return sum(d.test is not None for d in self.deltas)

    def drops_below(self, threshold: float) -> list[Delta]:
        """Shared rows whose Dice fell by more than ``threshold``."""
        return [d for d in self.deltas if d.dice < -threshold]


@dataclass(frozen=True)
class _Table:
    """A table as ``compare`` reads it: its rows by entry, its benchmark, its noise model with
    the model's row of each entry it covers, or why it has none."""

    rows: dict[str, TableRow]
    benchmark: Mapping[str, Any] | None
    model: noise.NoiseModel | None = None
    index: Mapping[str, int] = field(default_factory=dict)
    problem: str | None = None
    #: An ablation table's axis (None: a leaderboard).
    axis: str | None = None


def read_table(path: Path) -> dict[str, TableRow]:
    """The ranked rows of a leaderboard, by entry label: from its JSON twin (``path`` itself, or
    the twin beside a markdown ``path``), else from the markdown of a table without one."""
    return _read(path).rows


def _read(path: Path) -> _Table:
    path = Path(path)
    if path.suffix != ".json" and twin_path(path).is_file():
        path = twin_path(path)
    if path.suffix == ".json":
        data = load_twin(path)
        if data.get("kind") == "ablation":
            return _ablation(path, data)
        rows = twin_rows(path, data)
        return _modelled(rows, data)
    rows = _rows(path, leaderboard_rows(path))
    benchmark = benchmark_of(path.read_text(encoding="utf-8", errors="replace"))
    return _Table(rows, benchmark, problem="a table from before JSON twins")


def _modelled(
    rows: dict[str, TableRow],
    data: Mapping[str, Any],
    labels: Sequence[str] | None = None,
    benchmark: Mapping[str, Any] | None = None,
    axis: str | None = None,
) -> _Table:
    """A twin's rows with its noise model (none: why); ``labels`` name the twin's rows in
    order (its entries, unless given)."""
    benchmark = data.get("benchmark") if benchmark is None else benchmark
    summary = data.get("noise") or {"problem": "a table from before noise models"}
    try:
        model = model_of(summary)
    except ValueError as exc:
        return _Table(rows, benchmark, problem=str(exc), axis=axis)
    labels = [r["entry"] for r in data["rows"]] if labels is None else labels
    index = {labels[i]: k for k, i in enumerate(summary["rows"])}
    return _Table(rows, benchmark, model, index, axis=axis)


def _ablation(path: Path, data: Mapping[str, Any]) -> _Table:
    """An ablation table's twin: its rows with a run, by the axis's value; its benchmark by id."""
    rows = data.get("rows")
    axis = data.get("axis")
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise HarnessError(f"{path}: no list of rows; regenerate it with `harness leaderboard`")
    if not isinstance(axis, str) or not axis:
        raise HarnessError(f"{path}: an ablation table naming no axis; regenerate it")
    labels = [str(r.get("value")) for r in rows]
    ran = [r for r in rows if r.get("n")]
    # An ablation's row keeps its spread over seeds as ``std``, where a leaderboard's has ``noise``.
    table = _rows(path, [{"noise": r.get("std"), **r, "entry": str(r.get("value"))} for r in ran])
    benchmark = {"id": str(data.get("benchmark_id"))}
    return _modelled(table, data, labels, benchmark, axis)


def twin_rows(path: Path, data: Mapping[str, Any]) -> dict[str, TableRow]:
    """The rows of a leaderboard's twin ``data`` (read from ``path``), by entry label."""
    if data.get("kind") != "leaderboard":
        raise HarnessError(
            f"{path}: {_kind_text(data.get('kind'))}, not a leaderboard; "
            "`harness compare` takes two leaderboards (<benchmark>.json or <benchmark>.md) "
            "or two ablation tables of one axis"
        )
    rows = data.get("rows")
    if not isinstance(rows, list):
        raise HarnessError(f"{path}: no list of rows; regenerate it with `harness leaderboard`")
    return _rows(path, rows)


def _rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> dict[str, TableRow]:
    """Rows as a twin holds them, by entry label; one that lacks a number names ``path``."""
    table: dict[str, TableRow] = {}
    for rank, row in enumerate(rows, 1):
        try:
            interval = row.get("interval")
            table[row["entry"]] = TableRow(
                entry=row["entry"],
                mean=float(row["mean_dice"]),
                noise=_optional(row["noise"]),
                n=int(row["n"]),
                params_m=_optional(row.get("params_m")),
                images_per_s=_optional(row.get("train_images_per_s")),
                peak_mb=_optional(row.get("peak_memory_mb")),
                interval=None if interval is None else (float(interval[0]), float(interval[1])),
            )
        except KeyError as exc:
            raise HarnessError(f"{path}: row {rank} has no {exc}; regenerate the table") from None
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            raise HarnessError(f"{path}: row {rank}: {exc}; regenerate the table") from None
    return table


def _kind_text(kind: object) -> str:
    if isinstance(kind, str) and kind:
        return f"an {kind} table" if kind[0] in "aeiou" else f"a {kind} table"
    return "a table of unknown kind"


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def compare(a: Path, b: Path, across_benchmarks: bool = False) -> Comparison:
    """Rows of ``b`` against rows of ``a`` with the same entry; rows in one table only listed.
    Tables of two benchmarks are a ``HarnessError`` naming both and what differs, unless
    ``across_benchmarks``."""
    first, second = _read(a), _read(b)
    _check_kinds(a, first, b, second)
    names = (benchmark_name(first.benchmark), benchmark_name(second.benchmark))
    differ = tuple(differences(first.benchmark, second.benchmark))
    if differ and not across_benchmarks:
        raise HarnessError(
            f"{visible(a)} and {visible(b)} are tables of two benchmarks ({visible(names[0])} "
            f"and {visible(names[1])}; {visible('; '.join(differ))}): their rows are not "
            "comparable; pass --across-benchmarks to compare them anyway"
        )
    shared = [k for k in first.rows if k in second.rows]
    tests = _tests(first, second, shared)
    return Comparison(
        deltas=[Delta(k, first.rows[k], second.rows[k], tests.get(k)) for k in shared],
        only_a=[k for k in first.rows if k not in second.rows],
        only_b=[k for k in second.rows if k not in first.rows],
        benchmarks=names,
        differences=differ,
        unmodelled=tuple(
            f"{side}: no noise model ({visible(t.problem, 200)})"
            for side, t in (("A", first), ("B", second))
            if t.model is None
        ),
        axis=first.axis,
    )


def _check_kinds(a: Path, first: _Table, b: Path, second: _Table) -> None:
    """Two leaderboards, or two ablation tables of one axis; else a ``HarnessError``."""
    if first.axis == second.axis:
        return
    kinds = [
        f"{visible(p)} is "
        + (f"an ablation table of {visible(t.axis)}" if t.axis else "a leaderboard")
        for p, t in ((a, first), (b, second))
    ]
    raise HarnessError(
        f"{kinds[0]} and {kinds[1]}: `harness compare` takes two leaderboards or two ablation "
        "tables of the same axis"
    )


def _tests(first: _Table, second: _Table, shared: Sequence[str]) -> dict[str, noise.Difference]:
    """The simultaneous test of each shared entry both tables model, by entry."""
    if first.model is None or second.model is None:
        return {}
    both = [k for k in shared if k in first.index and k in second.index]
    if not both:
        return {}
    pairs = [(first.index[k], second.index[k]) for k in both]
    return dict(zip(both, noise.compare(first.model, second.model, pairs), strict=True))


def benchmark_name(benchmark: Mapping[str, Any] | None) -> str:
    """A table's benchmark by its id, or (a table without a twin) its protocol and hash."""
    if benchmark is None:
        return "unknown"
    if benchmark.get("id"):
        return str(benchmark["id"])
    protocol = benchmark["protocol"]
    return f"{protocol['label']} (hash {protocol['hash']}) on {benchmark['dataset']['name']}"


def differences(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> list[str]:
    """What differs between two tables' benchmarks (A → B): the protocol's hash and each of
    its settings that differ, the dataset; none when they are one benchmark or either is
    unknown."""
    if a is None or b is None:
        return []
    if "protocol" not in a or "protocol" not in b:  # an ablation's twin names its id alone
        return [] if a.get("id") == b.get("id") else [f"benchmark {a.get('id')} → {b.get('id')}"]
    out = []
    pa, pb = a["protocol"], b["protocol"]
    if pa["hash"] != pb["hash"]:
        fa = {k: setting_text(v) for k, v in pa["fields"].items()}
        fb = {k: setting_text(v) for k, v in pb["fields"].items()}
        changed = [
            f"{k} {fa.get(k, '(not set)')} → {fb.get(k, '(not set)')}"
            for k in sorted({*fa, *fb})
            if fa.get(k) != fb.get(k)
        ]
        fields = f"; protocol fields that differ: {', '.join(changed)}" if changed else ""
        out.append(f"protocol hash {pa['hash']} → {pb['hash']}{fields}")
    da, db = a["dataset"], b["dataset"]
    fa, fb = str(da["fingerprint"]), str(db["fingerprint"])
    if not (fa.startswith(fb) or fb.startswith(fa)):
        out.append(f"dataset {da['name']} ({fa[:8]}) → {db['name']} ({fb[:8]})")
    return out
