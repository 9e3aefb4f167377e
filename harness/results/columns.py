"""Every column of every table, declared once, and how a number reads in a cell.

A ``Column`` is a header, where its value is in a row of the table's data (a path of keys
into a row of the JSON twin, or a function of the row), how its cell shows that value
(decimals, a sign, a suffix; ``—`` for none), its alignment, whether its values are numbers
(the page sorts them as such) and whether the page offers a range filter on it. The markdown
view (``harness.results.markdown``), the twin's ``columns``, the web page
(``harness.results.pages``), a row's drill-down and ``harness compare`` all read these
declarations: a column added to ``LEADERBOARD`` (with its value in the twin's rows,
``harness.results.leaderboard``) shows in each of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from harness.classes import CLASSES
from harness.results import speed

#: A row of a table's data: a row of its JSON twin (or of ``harness compare``'s deltas).
Row = Mapping[str, Any]
#: What a cell shows when its row has no value there.
NONE = "—"
#: The ablation's verdict cell of a value that has no succeeded run.
NO_RUN = "no succeeded run"

Align = Literal["left", "right", "center"]
#: The markdown alignment row's cell for each alignment.
RULES: dict[str, str] = {"left": "---", "right": "---:", "center": ":---:"}


def number(value: Any, digits: int | None = None) -> str:
    """``value`` with ``digits`` decimals (None: three significant digits); ``—`` for no number."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return NONE
    return f"{value:.3g}" if digits is None else f"{value:.{digits}f}"


def signed(value: float | None, digits: int) -> str:
    """A difference with its sign (``+0.0120``); ``—`` for none."""
    return NONE if value is None else f"{value:+.{digits}f}"


def minus(b: float | None, a: float | None) -> float | None:
    """``b - a``, or None when either is unknown."""
    return None if a is None or b is None else b - a


def chosen_text(chosen: Mapping[str, float]) -> str:
    """A tuned entry's chosen values: ``lr=0.0107, weight_decay=2.03e-05``."""
    return ", ".join(f"{k}={v:.3g}" for k, v in chosen.items())


@dataclass(frozen=True)
class Column:
    """One column: its header, its value in a row, and its cell as the markdown shows it."""

    name: str
    #: Where the value is in a row: a path of keys, or a function of the row.
    source: tuple[str, ...] | Callable[[Row], Any]
    #: Decimals of a number (None: the value as text).
    digits: int | None = None
    #: A number shown with its sign (a difference).
    signed: bool = False
    #: Text after a value, from the row.
    suffix: Callable[[Row], str] | None = None
    #: The cell of a row with a value, when it shows more than the value (``Worst class``).
    text: Callable[[Row], str] | None = None
    align: Align = "left"
    #: Its values are numbers: sorted as numbers, right-aligned on the page.
    numeric: bool = False
    #: The page offers a range filter on it (where its values differ).
    ranged: bool = False
    #: The header a terminal shows, where it differs from ``name``.
    terminal_name: str | None = None
    #: Its cells are made here from numbers alone (``[0.8773, 0.9080]``): the markdown writes
    #: them as they are, with no escapes (free text is always escaped).
    numbers_only: bool = False
    #: A row whose value is shown but is no figure to compare (a throughput taken under
    #: contention): the page leaves it out of the range filter and sorts it last.
    incomparable: Callable[[Row], bool] | None = None

    def value(self, row: Row) -> Any:
        """The row's value in this column (None: none)."""
        if callable(self.source):
            return self.source(row)
        found: Any = row
        for key in self.source:
            found = found.get(key) if isinstance(found, Mapping) else None
        return found

    def cell(self, row: Row) -> str:
        """The row's cell, as the markdown (and the page, and the terminal) shows it."""
        value = self.value(row)
        if value is None:
            return NONE
        if self.text is not None:
            return self.text(row)
        if self.digits is None:
            shown = str(value)
        else:
            shown = signed(value, self.digits) if self.signed else number(value, self.digits)
        return shown + (self.suffix(row) if self.suffix is not None else "")

    @property
    def rule(self) -> str:
        """The column's cell in the markdown table's alignment row."""
        return RULES[self.align]


def interval_text(low: float, high: float, digits: int = 4, sign: bool = False) -> str:
    """An interval as a cell shows it: ``[0.8773, 0.9080]`` (``sign``: ``[-0.0120, +0.0300]``)."""
    form = f"{'+' if sign else ''}.{digits}f"
    return f"[{low:{form}}, {high:{form}}]"


def band_text(low: int, high: int) -> str:
    """A rank band as a cell shows it: ``1–7``, or ``16`` when the rank is certain."""
    return str(low) if low == high else f"{low}–{high}"


def _low(key: str) -> Callable[[Row], Any]:
    """The lower end of a row's pair ``key`` (an interval, a rank band): what the page sorts by."""

    def value(row: Row) -> Any:
        pair = row.get(key)
        return pair[0] if isinstance(pair, list | tuple) and len(pair) == 2 else None

    return value


def _interval(row: Row) -> str:
    return interval_text(*row["interval"])


def _band(row: Row) -> str:
    return band_text(*row["rank_band"])


#: A row's 95 % confidence interval of its true mean Dice (``harness.results.noise``).
INTERVAL = Column(
    "95 % CI", _low("interval"), text=_interval, align="right", numeric=True, numbers_only=True
)
#: A row's 95 % rank band.
RANK_BAND = Column(
    "Rank (95 %)", _low("rank_band"), text=_band, align="center", numeric=True, numbers_only=True
)


def _worst(row: Row) -> str:
    worst = row["worst_class"]
    return f"{worst['class']} {number(worst['dice'], 4)}"


def _measure(name: str, key: str, digits: int, ranged: bool = False) -> Column:
    """A number measured per row, right-aligned."""
    return Column(name, (key,), digits, align="right", numeric=True, ranged=ranged)


def _throughput(name: str, what: str) -> Column:
    """Images/s of ``what`` (``train``, ``inference``), marked where the figure does not
    compare (``<what>_figure``: taken under contention, or a whole run's wall time)."""

    def mark(row: Row) -> str:
        return speed.MARKS.get(str(row.get(f"{what}_figure")), "")

    return Column(
        name,
        (f"{what}_images_per_s",),
        1,
        suffix=mark,
        align="right",
        numeric=True,
        ranged=True,
        incomparable=lambda row: bool(mark(row)),
    )


#: A leaderboard row's cost: the last columns of the table, and a drill-down's cost section.
COST = (
    _measure("Params (M)", "params_m", 2, ranged=True),
    _measure("GFLOPs", "gflops", 2),
    _throughput("Train img/s", "train"),
    _throughput("Infer img/s", "inference"),
    _measure("Peak mem (MB)", "peak_memory_mb", 0),
    _measure("Device-hours", "device_hours", 4, ranged=True),
    Column("Device", ("device",)),
)

#: A leaderboard's columns, in order (its twin's ``columns`` names them).
LEADERBOARD = (
    Column("#", ("rank",), align="right", numeric=True),
    Column("Entry", ("entry",)),
    _measure("Mean Dice", "mean_dice", 4),
    INTERVAL,
    RANK_BAND,
    Column("n", ("n",), align="right", numeric=True),
    Column("vs #1", ("vs_leader",), align="center"),
    Column("Worst class", ("worst_class", "dice"), text=_worst, numeric=True),
    _measure("Small-bone Dice", "small_bone_dice", 4),
    *COST,
)

#: A leaderboard's second table: each entry's Dice per class.
PER_CLASS = (
    Column("Entry", ("entry",)),
    *(Column(c, ("per_class_dice", c), 3, align="right", numeric=True) for c in CLASSES),
)


def _versus_best(row: Row) -> str:
    return str(row.get("vs_best") or NO_RUN)


def _chosen(row: Row) -> str | None:
    return chosen_text(row["chosen"]) if "chosen" in row else None


#: An ablation's columns after its first (the value varied), and the tuned one's last.
ABLATION = (
    _measure("Dice", "mean_dice", 4),
    INTERVAL,
    Column("n", ("n",), align="right", numeric=True),
    Column("vs best", _versus_best, align="center"),
)
CHOSEN = Column("Chosen", _chosen)


def axis_title(axis: str) -> str:
    """An ablation's axis as its title and first header say it: ``loss`` is ``Loss``."""
    return axis.capitalize()


def ablation(axis: str, tuned: bool) -> tuple[Column, ...]:
    """An ablation's columns: the value of ``axis`` varied, Dice, its 95 % CI, n, the verdict
    against the best and, ``tuned``, the values its tuning chose."""
    return (Column(axis_title(axis), ("value",)), *ABLATION, *((CHOSEN,) if tuned else ()))


def _members(row: Row) -> str:
    return " + ".join(row["members"])


def _postprocessing(row: Row) -> str:
    """``none``, or the post-processor and how many classes the rule kept it for."""
    name, kept = row["postprocessor"], len(row.get("kept_for") or ())
    if name == "none":
        return name
    return f"{name} ({kept} of {len(CLASSES)} classes)" if kept else f"{name} (no class)"


#: ``harness select``'s columns: a configuration (members, TTA, post-processing), its
#: cross-validated Dice judged as a leaderboard's rows are, and its cost at inference.
SELECTION = (
    Column("#", ("rank",), align="right", numeric=True),
    Column("Members", _members),
    Column("TTA", ("tta",)),
    Column("Post-processing", _postprocessing),
    _measure("CV Dice", "mean_dice", 4),
    INTERVAL,
    RANK_BAND,
    Column("n", ("n",), align="right", numeric=True),
    Column("vs #1", ("vs_leader",), align="center"),
    _measure("Passes", "passes", 0, ranged=True),
    _measure("Infer img/s", "inference_images_per_s", 1),
)


def of_table(data: Mapping[str, Any]) -> tuple[Column, ...]:
    """The columns of a table's data (a leaderboard's twin, an ablation's, a selection's)."""
    if data.get("kind") == "ablation":
        return ablation(str(data["axis"]), bool(data.get("budget")))
    if data.get("kind") == "selection":
        return SELECTION
    return LEADERBOARD


#: The shared rows' B minus A in ``harness compare``.
DELTA_DICE = Column("Δ Dice", ("dice",), 4, signed=True, align="right", numeric=True)


def _delta_interval(row: Row) -> str:
    return interval_text(row["low"], row["high"], sign=True)


#: The simultaneous 95 % interval of B minus A.
DELTA_INTERVAL = Column(
    "Δ 95 % CI", ("low",), text=_delta_interval, align="right", numeric=True, numbers_only=True
)
#: ``harness compare``'s columns (its terminal table and its page), over
#: ``harness.results.compare.Delta.data``.
COMPARE = (
    Column("Entry", ("entry",)),
    _measure("A Dice", "a_dice", 4),
    _measure("B Dice", "b_dice", 4),
    DELTA_DICE,
    DELTA_INTERVAL,
    Column("Noise", ("noise",), align="right", terminal_name=""),
    Column("Δ img/s", ("images_per_s",), 1, signed=True, align="right", numeric=True),
    Column("Δ peak MB", ("peak_mb",), 0, signed=True, align="right", numeric=True),
)
