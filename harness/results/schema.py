"""What a record and a table's twin may hold: the type, range and characters of every field a
table, a twin or a page uses, checked wherever one is read.

Records and twins are input: a record may come from someone else (a pull request adding
``leaderboards/records/...``, a shared runs folder), a twin from another table in the folder.
Each is checked against a typed model (pydantic) before anything is made from it; one that
fails is never used, and never a traceback: ``problem`` names the first field that is wrong
and how (``cost.wall_s: not a number``), for the table's header and the terminal.

The rules, once: a component's name keeps to the plugin naming rule (lower-case letters and
digits joined by hyphens, ``harness.components.registry``), as does a dataset's; a parameter's
or a setting's key to the entry rule (``harness.components.entry``); free text (a protocol's
label, a device, a budget) is one line of printable text, rendered as text wherever it is
shown; a number is a finite number (never a boolean, never a string), Dice lies in [0, 1],
counts and costs are never negative. A record field that nothing here declares is refused
(``harness.results.records``), so a new field of the record is declared here first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    create_model,
    model_validator,
)

from harness.classes import CLASSES
from harness.components.kinds import TRAINING_KINDS
from harness.errors import hidden, visible

#: The plugin naming rule (``harness.components.registry``): ``unetpp``, ``warmup-cosine``.
NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
#: A parameter's or a protocol setting's key (``harness.components.entry``).
KEY = re.compile(r"^[a-z_][a-z0-9_]*$")
#: A benchmark id, as a file name inside the leaderboards folder: no separator, no dot first.
SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
#: An ablation's axis (``loss``, ``model``), part of its file name.
AXIS = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
#: A hash or a fingerprint.
HEX = re.compile(r"^[0-9a-f]{1,128}$")
#: A tuned value's name: a protocol field (``lr``) or a component's own parameter under its
#: entry field (``optimizer.momentum``; ``harness.studies.space``).
TUNED_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
#: A tuned entry's budget tag: ``<trials>-<tuning hash>``.
TUNED = re.compile(r"^[0-9]{1,9}-[0-9a-f]{1,64}$")
#: The longest line of free text a field may hold.
MAX_LINE = 2000


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not text")
    return value


def _line(value: Any) -> str:
    text = _text(value)
    if any(hidden(c) for c in text):
        raise ValueError("not one line of text (it holds a line break or a control character)")
    if len(text) > MAX_LINE:
        raise ValueError(f"longer than {MAX_LINE} characters")
    return text


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not pattern.match(_text(value)):
            raise ValueError(f"not {what}")
        return value

    return check


def _number(low: float | None = None, high: float | None = None) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("not a number")
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        if low is not None and value < low:
            raise ValueError(f"less than {low:g}")
        if high is not None and value > high:
            raise ValueError(f"more than {high:g}")
        return value

    return check


def _whole(low: int = 0, high: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("not a whole number")
        if value < low:
            raise ValueError(f"less than {low}")
        if high is not None and value > high:
            raise ValueError(f"more than {high}")
        return value

    return check


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("not true or false")
    return value


def _scalar(value: Any) -> Any:
    """A parameter's or a setting's value: text (one line), a finite number, or a flag."""
    if isinstance(value, str):
        return _line(value)
    if isinstance(value, bool):
        return value
    if not isinstance(value, int | float):
        raise ValueError("not text, a number or true/false")
    return _number()(value)


def _setting(value: Any) -> Any:
    """A protocol setting: a scalar, nothing, or a list of scalars."""
    if value is None:
        return None
    if isinstance(value, list):
        return [_scalar(v) for v in value]
    return _scalar(value)


def _class(value: Any) -> str:
    if _text(value) not in CLASSES:
        raise ValueError("not one of the 29 classes")
    return value


Text = Annotated[str, PlainValidator(_text)]
Line = Annotated[str, PlainValidator(_line)]
Name = Annotated[str, PlainValidator(_matching(NAME, "a plain name (lower-case, hyphens)"))]
Key = Annotated[str, PlainValidator(_matching(KEY, "a plain key (lower-case, underscores)"))]
TunedName = Annotated[
    str, PlainValidator(_matching(TUNED_NAME, "a tuned name (lr, optimizer.momentum)"))
]
SafeId = Annotated[str, PlainValidator(_matching(SAFE_ID, "a plain benchmark id"))]
Axis = Annotated[str, PlainValidator(_matching(AXIS, "a plain axis name"))]
Hex = Annotated[str, PlainValidator(_matching(HEX, "a hexadecimal hash"))]
Tuned = Annotated[str, PlainValidator(_matching(TUNED, "<trials>-<hash>"))]
ClassName = Annotated[str, PlainValidator(_class)]
Number = Annotated[float, PlainValidator(_number())]
Amount = Annotated[float, PlainValidator(_number(0))]
Dice = Annotated[float, PlainValidator(_number(0, 1))]
Probability = Annotated[float, PlainValidator(_number(0, 1))]
Whole = Annotated[int, PlainValidator(_whole())]
Positive = Annotated[int, PlainValidator(_whole(1))]
Flag = Annotated[bool, PlainValidator(_flag)]
Scalar = Annotated[Any, PlainValidator(_scalar)]
Setting = Annotated[Any, PlainValidator(_setting)]


class _Open(BaseModel):
    """An object that may hold more than is declared (what no table reads)."""

    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    """An object that holds exactly what is declared (a twin embeds it as it is)."""

    model_config = ConfigDict(extra="forbid")


# A record (harness.results.records.Record).


class Dataset(_Closed):
    name: Name
    fingerprint: Hex


class ProtocolFields(BaseModel):
    """A protocol's hashed settings; those a table reads are typed, the rest are settings."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Setting]
    folds: Positive | None = None
    cv_folds: list[Whole] | None = None


class ProtocolInfo(_Closed):
    name: Line
    label: Line
    hash: Hex
    fields: ProtocolFields


class Benchmark(_Closed):
    id: SafeId
    dataset: Dataset
    protocol: ProtocolInfo
    small_bones: list[ClassName] = []

    @model_validator(mode="after")
    def _named_by_its_id(self) -> Benchmark:
        """The id names this protocol's hash, this dataset and the start of its fingerprint
        (``<protocol>-<hash>__<dataset>-<fingerprint>``): a record cannot join the table of
        another benchmark by claiming its id."""
        middle = f"-{self.protocol.hash}__{self.dataset.name}-"
        head, found, tail = self.id.partition(middle)
        if not (head and found and tail and self.dataset.fingerprint.startswith(tail)):
            raise ValueError(
                f"id: does not name its protocol hash and dataset (…{middle}<fingerprint>)"
            )
        return self


class Component(_Open):
    name: Name
    params: dict[Key, Scalar] = {}
    plugin: Line | None = None
    distribution: Line | None = None
    version: Line | None = None


class _Entry(_Open):
    encoder: Line | None = None
    tta: Line = "none"
    hparams: dict[Key, Number] = {}
    tuned: Tuned | None = None


#: An entry's component fields, one per kind (``harness.components.kinds``), in table order.
ENTRY_FIELDS = tuple(kind.field for kind in TRAINING_KINDS)
#: An entry as a record holds it: a component of each kind, its encoder, TTA and own values.
EntryInfo = create_model(
    "EntryInfo", __base__=_Entry, **{name: (Component, ...) for name in ENTRY_FIELDS}
)


class Window(_Open):
    """The machine when a throughput was timed (``harness.engine.throughput.conditions``):
    what ``harness.results.speed.contention`` reads."""

    load: list[Amount] | None = None
    cpus: Positive | None = None
    threads: Positive | None = None
    concurrent_runs: Positive | None = None
    others_cpu: Amount | None = None
    device_type: Name | None = None


class TrainWindow(Window):
    """A run's timed window of training steps: its median images/s, the steps."""

    images_per_s: Amount | None = None
    warmup: Whole | None = None
    timed: Whole | None = None


class Quiet(Window):
    """A quiet pass's figures (``harness cost``), where and how they were measured."""

    machine: Line
    train_images_per_s: Amount | None = None
    inference_images_per_s: Amount | None = None
    train_warmup: Whole | None = None
    train_timed: Whole | None = None
    inference_warmup: Whole | None = None
    inference_timed: Whole | None = None
    measured_at: Line | None = None
    device: Line | None = None
    precision: Line | None = None
    clock: Literal["wall", "cpu"] | None = None


class Cost(_Open):
    parameters: Amount | None = None
    train_images_per_s: Amount | None = None
    inference_images_per_s: Amount | None = None
    gflops: Amount | None = None
    peak_memory_mb: Amount | None = None
    wall_s: Amount | None = None
    device_hours: Amount | None = None
    processes: Positive | None = None
    device: Line | None = None
    precision: Line | None = None
    inference_warmup: Whole | None = None
    inference_timed: Whole | None = None
    train_window: TrainWindow | None = None
    inference_window: Window | None = None
    quiet: Quiet | None = None

    @model_validator(mode="after")
    def _passes(self) -> Cost:
        if self.inference_timed and self.inference_warmup is None:
            raise ValueError("inference_warmup: missing where inference_timed is given")
        return self


class Cpu(_Open):
    model: Line | None = None
    threads: Whole | None = None


class Gpu(_Open):
    name: Line
    memory_mb: Amount


class Hardware(_Open):
    cpu: Cpu = Cpu()
    gpus: list[Gpu] = []
    cuda: Line | None = None
    driver: Line | None = None


class Trial(_Open):
    number: Whole
    values: dict[TunedName, Number] = {}
    mean_dice: Dice | None = None
    status: Line | None = None
    device_hours: Amount | None = None
    #: The trial's run folder, inside the runs folder (a page confines it there).
    record: Line | None = None
    #: Under successive halving: its rung (from 1) and the epochs it trained.
    rung: Positive | None = None
    epochs: Positive | None = None


class Chosen(_Open):
    trial: Whole | None = None
    values: dict[TunedName, Number] = {}
    mean_dice: Dice | None = None
    rung: Positive | None = None
    epochs: Positive | None = None


class Default(_Open):
    """Under successive halving, the default configuration against the chosen one."""

    trial: Whole | None = None
    values: dict[TunedName, Number] = {}
    mean_dice: Dice | None = None
    chosen_dice: Dice | None = None
    gain: Number | None = None
    rung: Positive | None = None
    epochs: Positive | None = None


class SpaceRange(_Open):
    """One tuned name's range and who chose it (``protocol`` or a component's name)."""

    low: Number
    high: Number
    log: Flag = True
    from_: Line | None = Field(None, alias="from")


class TuningSettings(_Open):
    fold: Whole | None = None


class Tuning(_Open):
    """A record's tuning: a tuned entry's budget, space, trials and choice; a trial's space
    and place in its study. Records written before spaces and halving lack those fields."""

    budget: Line | None = None
    tuning: TuningSettings | None = None
    #: The study's folder, inside the runs folder (a page confines it there).
    study: Line | None = None
    trials: list[Trial] = []
    chosen: Chosen | None = None
    trial_device_hours: Amount = 0
    space: dict[TunedName, SpaceRange] = {}
    default: Default | None = None


class Predictions(_Open):
    """The out-of-fold predictions kept beside a record (``--keep-predictions``): the file (in
    the run's folder), its size and SHA-256, the test-time augmentations it holds, its images."""

    file: SafeId
    bytes: Whole
    sha256: Hex
    tta: list[Name]
    images: Whole


class Record(_Closed):
    """A run's record as ``record.json`` holds it (schema 1)."""

    status: Literal["succeeded", "failed"]
    seed: Whole
    mean_dice: Dice | None
    per_class_dice: dict[ClassName, Dice]
    benchmark: Benchmark
    entry: EntryInfo  # type: ignore[valid-type]
    best: dict[str, Any] = {}
    cost: Cost = Cost()
    history: list[dict[str, Any]] = []
    per_image_dice: list[list[Dice]] = []
    val_images: list[Line] = []
    error: Text | None = None
    versions: dict[str, Any] = {}
    code_revision: Text | None = None
    started_at: Text = ""
    finished_at: Text = ""
    resumes: list[dict[str, Any]] = []
    tuning: Tuning = Tuning()
    hardware: Hardware = Hardware()
    fold: Whole | None = None
    predictions: Predictions | None = None
    schema_: Literal[1] = Field(1, alias="schema")

    @model_validator(mode="after")
    def _succeeded_has_its_dice(self) -> Record:
        if self.status != "succeeded":
            return self
        if self.mean_dice is None:
            raise ValueError("mean_dice: missing in a succeeded run")
        absent = [c for c in CLASSES if c not in self.per_class_dice]
        if absent:
            raise ValueError(f"per_class_dice: lacks {', '.join(absent[:3])} in a succeeded run")
        if any(not scores for scores in self.per_image_dice):
            raise ValueError("per_image_dice: an image without scores")
        return self


# A table's JSON twin (harness.results.tables).


class Excluded(_Open):
    path: Text
    reason: Text


class Test(_Open):
    """A row's test against the leader: the rule, the adjusted p, the probability that the row
    beats the leader and its gap to it (``harness.results.judging``)."""

    method: Line
    p_value: Probability | None = None
    beats_leader: Probability | None = None
    gap: Number | None = None
    interval: list[Number] | None = None


def _pair(value: Any, kind: Callable[[Any], Any]) -> list[Any] | None:
    """Two values in order (an interval, a rank band), or nothing."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("not a pair of values")
    low, high = kind(value[0]), kind(value[1])
    if low > high:
        raise ValueError("its low end is above its high end")
    return [low, high]


#: A row's 95 % interval of its true mean Dice, and its rank band.
DiceInterval = Annotated[list[float] | None, PlainValidator(lambda v: _pair(v, _number(0, 1)))]
RankBand = Annotated[list[int] | None, PlainValidator(lambda v: _pair(v, _whole(1)))]


class NoiseLayout(_Closed):
    counts: list[list[Annotated[int, PlainValidator(_whole(0, 10**6))]]]
    images: list[Annotated[int, PlainValidator(_whole(1, 10**6))]]


#: A mean square, or its degrees of freedom or a coefficient: bounded, so nothing overflows.
Square = Annotated[float, PlainValidator(_number(0, 1e9))]


class MeanSquares(_Closed):
    value: list[Square]
    df: list[Square]
    k_unit: Square
    k_entry_image: Square
    k_image: Square
    r_image: Square
    r_fold: Square
    inverse_units: Square


class Noise(_Open):
    """A table's noise model as its twin keeps it (``harness.results.judging.TableNoise``):
    enough to rebuild it, and the figures the header states; ``basis`` None: no model."""

    basis: Literal["images", "seeds"] | None
    rows: list[Whole]
    problem: Line | None = None
    reference: Whole | None = None
    means: list[Dice] = []
    layout: NoiseLayout | None = None
    mean_squares: MeanSquares | None = None
    heterogeneity: Probability | None = None
    df: Amount | None = None
    images_only: Flag = False
    replicated: Flag = False
    mdd: Amount | None = None

    @model_validator(mode="after")
    def _whole_model(self) -> Noise:
        if self.basis is None:
            return self
        if self.layout is None or self.mean_squares is None:
            raise ValueError("layout or mean_squares: missing in a noise model")
        if not len(self.rows) == len(self.means) == len(self.layout.counts):
            raise ValueError("rows: not one mean and one layout row for each")
        if len(set(self.rows)) != len(self.rows):
            raise ValueError("rows: a row named twice")
        return self


class WorstClass(_Open):
    class_: ClassName = Field(alias="class")
    dice: Dice


class BoardRow(_Open):
    rank: Positive
    entry: Line
    key: Line
    mean_dice: Dice
    std: Amount | None = None
    noise: Amount | None
    noise_is_se: Flag
    n: Positive
    vs_leader: Line
    interval: DiceInterval = None
    rank_band: RankBand = None
    test: Test | None = None
    worst_class: WorstClass
    small_bone_dice: Dice | None = None
    params_m: Amount | None = None
    gflops: Amount | None = None
    train_images_per_s: Amount | None = None
    #: What kind of figure each is (``harness.results.speed``: quiet, run, contended, ...).
    train_figure: Line | None = None
    inference_images_per_s: Amount | None = None
    inference_figure: Line | None = None
    peak_memory_mb: Amount | None = None
    device_hours: Amount | None = None
    device: Line
    budget: Line
    seeds: list[Whole]
    folds: list[Whole] = []
    dice_by_seed: dict[str, Dice]
    per_class_dice: dict[ClassName, Dice]
    runs: list[Line]

    @model_validator(mode="after")
    def _every_class(self) -> BoardRow:
        absent = [c for c in CLASSES if c not in self.per_class_dice]
        if absent:
            raise ValueError(f"per_class_dice: lacks {', '.join(absent[:3])}")
        return self


class Leaderboard(_Open):
    format: Line
    kind: Literal["leaderboard"]
    benchmark: Benchmark
    columns: list[Line] = []
    small_bones: list[ClassName] = []
    budgets: list[Line] = []
    hardware: list[Line] = []
    inference: list[list[Whole]] = []
    #: The timed windows of the training figures shown (warm-up, timed steps), and the quiet
    #: passes (machine, date) they came from (``harness.results.speed``).
    train_windows: list[list[Whole]] = []
    quiet_passes: list[list[Line]] = []
    precisions: list[Line] = []
    excluded: list[Excluded]
    noise: Noise | None = None
    rows: list[BoardRow]

    @model_validator(mode="after")
    def _model_rows(self) -> Leaderboard:
        _in_table(self.noise, len(self.rows))
        return self


def _in_table(noise: Noise | None, rows: int) -> None:
    """A noise model names rows of its table."""
    if noise is not None and any(r >= rows for r in noise.rows):
        raise ValueError(f"noise.rows: names a row the table lacks ({rows} rows)")
    if noise is not None and noise.reference is not None and noise.reference not in noise.rows:
        raise ValueError("noise.reference: not one of the model's rows")


class AblationRow(_Open):
    value: Line
    key: Line | None = None
    n: Whole
    runs: list[Line]
    entry: Line | None = None
    mean_dice: Dice | None = None
    std: Amount | None = None
    vs_best: Line | None = None
    interval: DiceInterval = None
    rank_band: RankBand = None
    test: Test | None = None
    chosen: dict[TunedName, Number] | None = None
    seeds: list[Whole] = []
    dice_by_seed: dict[str, Dice] = {}


class Ablation(_Open):
    format: Line
    kind: Literal["ablation"]
    benchmark_id: SafeId
    axis: Axis
    budget: Line | None = None
    excluded: list[Excluded]
    noise: Noise | None = None
    rows: list[AblationRow]

    @model_validator(mode="after")
    def _model_rows(self) -> Ablation:
        _in_table(self.noise, len(self.rows))
        return self


class SelectionRow(_Open):
    """A configuration of ``harness select``'s table."""

    rank: Positive
    entry: Line
    key: Line
    members: list[Line]
    tta: Name
    postprocessor: Name
    kept_for: list[ClassName]
    mean_dice: Dice
    std: Amount | None = None
    n: Positive
    vs_leader: Line
    interval: DiceInterval = None
    rank_band: RankBand = None
    test: Test | None = None
    dice_by_fold: dict[str, Dice]
    per_class_dice: dict[ClassName, Dice]
    passes: Positive
    inference_images_per_s: Amount | None = None
    runs: list[Line]


class SelectionMember(_Open):
    name: Line
    folder: SafeId
    entry: Line
    runs: Positive
    inference_images_per_s: Amount | None = None


class SelectionSettings(_Open):
    max_members: Positive
    tta: list[Name]
    passes: dict[Name, Positive]
    postprocessors: list[Name]
    rule: Line


class HeldOut(_Open):
    scored: Flag
    reason: Line | None = None
    mean_dice: Dice | None = None
    images: Whole | None = None


class Selection(_Open):
    """``harness select``'s table: configurations ranked by cross-validated Dice."""

    format: Line
    kind: Literal["selection"]
    benchmark_id: SafeId
    benchmark: Benchmark
    members: list[SelectionMember]
    settings: SelectionSettings
    excluded: list[Excluded]
    noise: Noise | None = None
    held_out: HeldOut
    command: Text | None = None
    rows: list[SelectionRow]

    @model_validator(mode="after")
    def _model_rows(self) -> Selection:
        _in_table(self.noise, len(self.rows))
        return self


TWINS: dict[str, type[BaseModel]] = {
    "leaderboard": Leaderboard,
    "ablation": Ablation,
    "selection": Selection,
}


# What is wrong, in one phrase.


def problem(model: type[BaseModel], data: Mapping[str, Any]) -> str | None:
    """What is wrong with ``data`` as a ``model`` (``cost.wall_s: not a number``; with how many
    more problems there are), or None when nothing is."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = _phrase(errors[0])
        more = len(errors) - 1
        return first + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
    except RecursionError:
        return "nested too deeply"
    return None


#: Pydantic's own error types, in words.
_WORDS = {
    "missing": "missing",
    "extra_forbidden": "a field this harness does not know",
    "dict_type": "not an object",
    "model_type": "not an object",
    "model_attributes_type": "not an object",
    "list_type": "not a list",
    "literal_error": "",
}


def _phrase(error: Mapping[str, Any]) -> str:
    """One validation error as ``field.path: what is wrong``."""
    where = _where(error["loc"])
    kind = error["type"]
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if kind in _WORDS and _WORDS[kind]:
        message = _WORDS[kind]
    elif kind == "literal_error":
        message = message.replace("Input should be", "should be")
    if ": " in message and kind == "value_error" and not where:
        return visible(message, 300)  # a check of the whole object names its own field
    if ": " in message and kind == "value_error":
        return visible(f"{where}.{message}", 300)
    return visible(f"{where}: {message}" if where else message, 300)


def _where(loc: tuple[Any, ...]) -> str:
    """A field's path: ``cost.wall_s``, ``tuning.trials[0].number``."""
    out = ""
    for part in loc:
        if part == "[key]":  # a key of a mapping: the path already ends with it
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{visible(part, 60)}" if out else visible(part, 60)
    return out
