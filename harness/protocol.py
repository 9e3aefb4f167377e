"""Protocols: the fixed training and evaluation settings that make runs comparable.

A protocol is data (a TOML file), separate from the code that executes it, like
nnU-Net's plans. Its hash covers every field that can change a score, so two runs
share a leaderboard only when they were trained and scored the same way. Fields
that only choose defaults for the entry (optimizer, scheduler, augmentation), the
seeds to run, where the synthetic data comes from (the dataset fingerprint covers
it) and how many loader workers to use are outside the hash.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

#: Fields that cannot change a score, so they stay out of the hash.
UNHASHED = frozenset(
    {
        "name",
        "description",
        "version",
        "seeds",
        "optimizer",
        "scheduler",
        "augmentation",
        "synth_ids",
        "synth_size",
        "synth_seed",
        "num_workers",
        "tuning",
    }
)

#: Fields added after tables were published: hashed only when set, so every protocol that
#: leaves them at their default keeps its hash (and its leaderboard).
HASHED_WHEN_SET = frozenset({"exclude_folds", "cv_folds"})

#: Protocol fields an entry may set for itself (``--hparam``) and ``harness tune`` may tune.
TUNABLE = ("lr", "weight_decay", "warmup_epochs", "grad_clip")

#: Samplers ``harness tune`` knows: Optuna's quasi-Monte Carlo sampler (scrambled Sobol).
SAMPLERS = ("qmc",)

#: How ``harness tune`` spends its trials: ``full`` trains every configuration for the
#: protocol's epochs; ``halving`` is successive halving (short, compressed schedules first,
#: the best ``1/eta`` trained again for longer; ``harness.studies.halving``).
SCHEDULES = ("full", "halving")


def _digest(data: dict[str, Any]) -> str:
    """Ten hex digits of SHA-256 over ``data``'s canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Range:
    """One tuned field's range; ``log``: sampled uniformly in log space."""

    low: float
    high: float
    log: bool = True

    def __str__(self) -> str:
        return f"[{self.low:g}, {self.high:g}]{' log' if self.log else ''}"

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def range_problem(low: Any, high: Any, log: Any) -> str | None:
    """Why ``low``, ``high``, ``log`` make no range (None when they make one): numbers with
    ``low < high``, ``low > 0`` on a log scale, ``log`` true or false."""
    numbers = all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in (low, high)
    )
    if not numbers:
        return f"bounds {low!r}, {high!r} are not both finite numbers"
    if not isinstance(log, bool):
        return f"log must be true or false, got {log!r}"
    if not low < high:
        return f"low {low:g} is not below high {high:g}"
    if log and low <= 0:
        return f"a log range needs low > 0, got [{low:g}, {high:g}]"
    return None


@dataclass(frozen=True)
class Tuning:
    """The equal tuning budget of ``harness tune``: the same for every entry of a protocol."""

    #: Trials per entry (each a full run of the protocol on the tuning split).
    trials: int = 8
    #: ``qmc``: Optuna's QMCSampler (scrambled Sobol), deterministic for ``seed``.
    sampler: str = "qmc"
    seed: int = 0
    #: The fold the trials validate on; the protocol's own ``fold`` is left out of their
    #: training entirely, so nothing about it steers the choice.
    fold: int = 1
    #: The training seed of every trial.
    trial_seed: int = 0
    space: tuple[tuple[str, Range], ...] = (
        ("lr", Range(1e-4, 1e-1)),
        ("weight_decay", Range(1e-6, 1e-2)),
    )
    #: ``full`` (every trial trains the protocol's epochs) or ``halving`` (``SCHEDULES``).
    schedule: str = "full"
    #: Successive halving's reduction factor: the best ``1/eta`` of a rung go on, each rung
    #: ``eta`` times longer than the one before.
    eta: int = 3
    #: Successive halving's first (shortest) rung, in epochs.
    min_epochs: int = 1
    #: Protocol fields never tuned, whatever a component declares (``TUNABLE`` names).
    fixed: tuple[str, ...] = ()

    @property
    def hash(self) -> str:
        """Ten hex digits over the budget and space (a tuned entry's identity carries it)."""
        return _digest(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The budget as data. What was added after tuned tables were published (the schedule,
        the fixed fields) is written only when it differs from the default, so a budget
        without them keeps its hash (and its published tables their entries)."""
        data: dict[str, Any] = {
            "trials": self.trials,
            "sampler": self.sampler,
            "seed": self.seed,
            "fold": self.fold,
            "trial_seed": self.trial_seed,
            "space": {k: dataclasses.asdict(r) for k, r in self.space},
        }
        if self.schedule != "full":
            data.update(schedule=self.schedule, eta=self.eta, min_epochs=self.min_epochs)
        if self.fixed:
            data["fixed"] = list(self.fixed)
        return data

    @property
    def budget(self) -> str:
        """The budget in words, for a table's header."""
        ranges = ", ".join(f"{k} {r}" for k, r in self.space)
        text = (
            f"{self.trials} trials ({self.sampler} seed {self.seed}) over {ranges}, "
            f"validated on fold {self.fold}"
        )
        if self.schedule == "halving":
            text += f", successive halving (eta {self.eta}, from {self.min_epochs} epochs)"
        if self.fixed:
            text += f", {' and '.join(self.fixed)} fixed"
        return text


@dataclass(frozen=True)
class Protocol:
    """Every setting of training and evaluation that the entry does not choose."""

    name: str
    description: str = ""
    version: int = 1
    # training
    resolution: int = 128
    epochs: int = 20
    batch_size: int = 8
    encoder: str = "resnet18"
    encoder_weights: str = "none"
    in_channels: int = 1
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    grad_clip: float = 0.0
    amp: bool = True
    channels_last: bool = True
    # split and evaluation
    folds: int = 5
    fold: int = 0
    val_interval: int = 1
    eval_resolution: str = "original"
    threshold: float = 0.5
    # defaults for what the entry does not say, and run bookkeeping (unhashed)
    seeds: tuple[int, ...] = (0,)
    optimizer: str = "adamw"
    scheduler: str = "warmup-cosine"
    augmentation: str = "none"
    synth_ids: int = 20
    synth_size: int = 256
    synth_seed: int = 0
    num_workers: int = 0
    #: Folds left out of training entirely (a tuning trial leaves out the protocol's fold).
    exclude_folds: tuple[int, ...] = ()
    #: A cross-validated benchmark (``--folds``): each run trains without one of these folds
    #: and validates on it; its rows aggregate over them. Empty: the benchmark of ``fold``.
    cv_folds: tuple[int, ...] = ()
    tuning: Tuning = field(default_factory=Tuning)
    derived_from: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def hash(self) -> str:
        """Ten hex digits of SHA-256 over the canonical JSON of the score-changing fields."""
        return _digest(self.hashed_fields())

    def hashed_fields(self) -> dict[str, Any]:
        return {
            f.name: _plain(getattr(self, f.name))
            for f in fields(self)
            if f.name not in UNHASHED
            and f.name != "derived_from"
            and not (f.name in HASHED_WHEN_SET and getattr(self, f.name) == f.default)
        }

    @property
    def label(self) -> str:
        """``name`` plus the ``--set`` overrides it was derived with."""
        return self.name + "".join(f" {s}" for s in self.derived_from)

    @property
    def pretrained(self) -> str | None:
        return None if self.encoder_weights == "none" else self.encoder_weights

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        d["hash"] = self.hash
        return d

    def derive(self, overrides: list[str] | tuple[str, ...]) -> Protocol:
        """A new protocol with ``KEY=VALUE`` overrides (``--set``), values parsed as TOML."""
        if not overrides:
            return self
        changes: dict[str, Any] = {}
        for item in overrides:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise HarnessError(f"--set {item!r}: expected KEY=VALUE, e.g. --set epochs=3")
            if key not in _SETTABLE:
                near = difflib.get_close_matches(key, _SETTABLE, n=3)
                hint = f"did you mean {', '.join(near)}?" if near else "fields:"
                raise HarnessError(
                    f"--set {key}: unknown protocol field; {hint} "
                    f"(all: {', '.join(sorted(_SETTABLE))})"
                )
            changes[key] = _coerce(key, _parse_value(raw.strip(), key), f"--set {key}")
        return self._changed(changes)

    def with_values(self, overrides: Sequence[tuple[str, Any]]) -> Protocol:
        """A new protocol with fields set to values (not text), as ``derive`` sets them: the
        same checks, the same label and hash as ``--set KEY=VALUE`` of the same values."""
        changes: dict[str, Any] = {}
        for key, value in overrides:
            if key not in _SETTABLE:
                raise HarnessError(f"{key}: unknown protocol field")
            plain = list(value) if isinstance(value, tuple) else value
            changes[key] = _coerce(key, plain, key)
        return self._changed(changes) if changes else self

    def _changed(self, changes: dict[str, Any]) -> Protocol:
        applied = tuple(f"{k}={_fmt(v)}" for k, v in changes.items())
        return dataclasses.replace(self, derived_from=self.derived_from + applied, **changes)


_FIELD_TYPES: dict[str, Any] = {f.name: f.type for f in fields(Protocol)}
_SETTABLE = [k for k in _FIELD_TYPES if k not in ("name", "derived_from", "tuning")]


def _plain(value: Any) -> Any:
    if isinstance(value, Tuning):
        return value.to_dict()
    return list(value) if isinstance(value, tuple) else value


def _fmt(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _parse_value(raw: str, key: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        # Bare words are strings: --set encoder=resnet34
        if "," in raw and key == "seeds":
            return [_parse_value(p, key) for p in raw.split(",")]
        return raw


def _coerce(key: str, value: Any, where: str) -> Any:
    """Check ``value`` against the field's type; ints are accepted where floats are expected."""
    kind = _FIELD_TYPES[key]
    bad = HarnessError(f"{where}: {value!r} is not a valid {kind}")
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if kind == "str":
        if not isinstance(value, str | int):
            raise bad
        return str(value)
    if kind == "tuple[int, ...]":
        items = value if isinstance(value, list) else [value]
        if (not items and key not in ("exclude_folds", "cv_folds")) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in items
        ):
            raise bad
        # A set of folds: one spelling (sorted, once each), so one hash.
        if key in ("exclude_folds", "cv_folds"):
            return tuple(sorted(set(items)))
        return tuple(items)
    raise bad  # pragma: no cover - a field type this module does not know


def _validate(p: Protocol) -> None:
    where = f"protocol {p.name!r}"
    positive = ("resolution", "epochs", "batch_size", "folds", "val_interval", "in_channels")
    for key in positive:
        if getattr(p, key) < 1:
            raise HarnessError(f"{where}: {key} must be at least 1, got {getattr(p, key)}")
    if p.resolution % 32:
        raise HarnessError(f"{where}: resolution must be a multiple of 32, got {p.resolution}")
    if not 0 <= p.fold < p.folds:
        raise HarnessError(f"{where}: fold must be in 0..{p.folds - 1}, got {p.fold}")
    if p.folds < 2:
        raise HarnessError(f"{where}: folds must be at least 2, got {p.folds}")
    if p.lr <= 0 or p.weight_decay < 0 or p.warmup_epochs < 0 or p.grad_clip < 0:
        raise HarnessError(f"{where}: lr must be > 0; weight_decay, warmup_epochs, grad_clip >= 0")
    if not 0 < p.threshold < 1:
        raise HarnessError(f"{where}: threshold must be between 0 and 1, got {p.threshold}")
    if p.eval_resolution != "original" and not (
        p.eval_resolution.isdigit() and int(p.eval_resolution) >= 32
    ):
        raise HarnessError(
            f'{where}: eval_resolution must be "original" or a size in pixels, '
            f"got {p.eval_resolution!r}"
        )
    if p.synth_ids < 5 or p.synth_size < 64 or p.num_workers < 0:
        raise HarnessError(f"{where}: synth_ids >= 5, synth_size >= 64, num_workers >= 0")
    if not p.seeds:
        raise HarnessError(f"{where}: seeds must name at least one seed")
    if any(not 0 <= f < p.folds for f in p.exclude_folds) or p.fold in p.exclude_folds:
        raise HarnessError(
            f"{where}: exclude_folds must name folds in 0..{p.folds - 1} other than fold {p.fold}"
        )
    if any(not 0 <= f < p.folds for f in p.cv_folds) or set(p.cv_folds) & set(p.exclude_folds):
        raise HarnessError(
            f"{where}: --folds must name folds in 0..{p.folds - 1} (not excluded ones), "
            f"got {','.join(map(str, p.cv_folds))}"
        )


def from_mapping(data: dict[str, Any], source: str) -> Protocol:
    """Build a protocol from parsed TOML, naming ``source`` in every error."""
    unknown = sorted(set(data) - set(_SETTABLE) - {"name", "tuning"})
    if unknown:
        raise HarnessError(
            f"{source}: unknown protocol field {unknown[0]!r}; fields: {', '.join(_SETTABLE)}"
        )
    if "name" not in data:
        raise HarnessError(f'{source}: a protocol needs a name = "..." field')
    values: dict[str, Any] = {
        k: _coerce(k, v, f"{source}: {k}") for k, v in data.items() if k != "tuning"
    }
    if "tuning" in data:
        values["tuning"] = tuning_from_mapping(data["tuning"], f"{source}: [tuning]")
    try:
        return Protocol(**values)
    except HarnessError as exc:
        raise HarnessError(f"{source}: {exc}") from None


_TUNING_KEYS = (
    "trials",
    "sampler",
    "seed",
    "fold",
    "trial_seed",
    "schedule",
    "eta",
    "min_epochs",
    "fixed",
    "space",
)
#: Whole-number keys of ``[tuning]`` and the least each may be.
_TUNING_WHOLE = {"trials": 1, "seed": 0, "fold": 0, "trial_seed": 0, "eta": 2, "min_epochs": 1}


def tuning_from_mapping(data: Any, source: str) -> Tuning:
    """A ``[tuning]`` table: ``trials``, ``sampler``, ``seed``, ``fold``, ``trial_seed``,
    ``schedule`` (``full`` or ``halving``) with ``eta`` and ``min_epochs``, ``fixed`` (fields
    never tuned) and ``[tuning.space]`` with one ``FIELD = {low, high, log}`` (or
    ``[low, high]``) per field."""
    if not isinstance(data, dict):
        raise HarnessError(f"{source}: expected a table")
    unknown = sorted(set(data) - set(_TUNING_KEYS))
    if unknown:
        raise HarnessError(f"{source}: unknown key {unknown[0]!r}; keys: {', '.join(_TUNING_KEYS)}")
    values: dict[str, Any] = {}
    for key, least in _TUNING_WHOLE.items():
        if key in data:
            v = data[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise HarnessError(
                    f"{source}: {key} must be a whole number of at least {least}, got {v!r}"
                )
            values[key] = v
    for key, choices in (("sampler", SAMPLERS), ("schedule", SCHEDULES)):
        if key in data:
            if data[key] not in choices:
                raise HarnessError(
                    f"{source}: {key} {data[key]!r} unknown; choose {', '.join(choices)}"
                )
            values[key] = data[key]
    if "fixed" in data:
        values["fixed"] = _fixed(data["fixed"], f"{source}.fixed")
    if "space" in data:
        values["space"] = _space(data["space"], f"{source}.space")
    both = sorted(set(values.get("fixed", ())) & {k for k, _ in values.get("space", ())})
    if both:
        raise HarnessError(f"{source}: {both[0]} is both fixed and in [tuning.space]; keep one")
    return Tuning(**values)


def _fixed(data: Any, source: str) -> tuple[str, ...]:
    """``fixed = ["weight_decay"]``: protocol fields no component may have tuned."""
    if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
        raise HarnessError(f'{source}: expected a list of field names, e.g. ["weight_decay"]')
    unknown = [v for v in data if v not in TUNABLE]
    if unknown:
        raise HarnessError(
            f"{source}: {unknown[0]!r} is not a tunable field; fields: {', '.join(TUNABLE)}"
        )
    return tuple(sorted(set(data)))


def _space(data: Any, source: str) -> tuple[tuple[str, Range], ...]:
    if not isinstance(data, dict) or not data:
        raise HarnessError(f"{source}: name at least one field, e.g. lr = [1e-4, 1e-1]")
    out = []
    for key, spec in data.items():
        if key not in TUNABLE:
            raise HarnessError(f"{source}: {key!r} cannot be tuned; fields: {', '.join(TUNABLE)}")
        if isinstance(spec, list) and len(spec) == 2:
            spec = {"low": spec[0], "high": spec[1]}
        if (
            not isinstance(spec, dict)
            or set(spec) - {"low", "high", "log"}
            or not ({"low", "high"} <= set(spec))
        ):
            raise HarnessError(f"{source}.{key}: expected [low, high] or {{low, high, log}}")
        low, high, log = spec["low"], spec["high"], spec.get("log", True)
        if range_problem(low, high, log) is not None:
            raise HarnessError(
                f"{source}.{key}: need numbers low < high (low > 0 on a log scale), log true/false"
            )
        out.append((key, Range(float(low), float(high), log)))
    # Sorted: the sampler's points follow the order of the space, and the hash sorts it.
    return tuple(sorted(out))


def builtin_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".toml") for p in _builtin_dir().iterdir() if p.suffix == ".toml"
    )


def _builtin_dir() -> Any:
    return resources.files("harness") / "protocols"


def load(name_or_path: str) -> Protocol:
    """A built-in protocol by name, or a TOML file by path."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.exists():
        if not path.is_file():
            raise HarnessError(f"{name_or_path}: protocol file not found")
        return _load_file(path.read_bytes(), str(path))
    if name_or_path not in builtin_names():
        raise HarnessError(
            f"unknown protocol {name_or_path!r}; built-in protocols: {', '.join(builtin_names())} "
            "(or pass a .toml file)"
        )
    resource = _builtin_dir() / f"{name_or_path}.toml"
    return _load_file(resource.read_bytes(), f"protocol {name_or_path!r}")


def _load_file(raw: bytes, source: str) -> Protocol:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{source}: not valid TOML ({exc})") from None
    return from_mapping(data, source)


def builtins() -> list[Protocol]:
    return [load(name) for name in builtin_names()]
