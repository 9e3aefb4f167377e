"""What every tracker says about a run besides the trainer's calls: where the run goes
(experiment, name, group), its params and tags, the scalars of an epoch and the files a
finished run leaves; and ``tracking.json``, the run folder's note of the runs it continues
at MLflow and W&B.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_text
from harness.components.kinds import TRAINING_KINDS
from harness.pictures.charts import CURVES, PER_CLASS
from harness.results.records import RECORD_NAME
from harness.runs.report import PREDICTION
from harness.runs.tracking import WEIGHTS_ENV
from harness.runs.tracking.metrics import METRICS_NAME

__all__ = [
    "STATE_NAME",
    "TRACKED_RECORD",
    "RunAbout",
    "epoch_scalars",
    "final_files",
    "read_state",
    "write_state",
]

#: In each tracked run folder: the MLflow run id and W&B run id a resume continues.
STATE_NAME = "tracking.json"
#: The name the record has at MLflow and W&B. Not ``record.json``: a local MLflow store and
#: W&B's files live under the runs folder, where every ``record.json`` is a run's record.
TRACKED_RECORD = "harness-record.json"
#: The entry's components, in the record's order.
_KINDS = tuple(kind.field for kind in TRAINING_KINDS)
_STATE_LOCK = threading.Lock()  # two trackers' threads may note their runs at once


@dataclass(frozen=True)
class RunAbout:
    """A run as the trackers name and describe it."""

    #: How the run's messages name it (``seed 0``).
    unit: str
    #: The benchmark's id: MLflow's experiment, W&B's project.
    experiment: str
    #: The entry's label and the seed (and fold): the run's name at the tracker.
    name: str
    #: The entry's label: W&B's group.
    group: str
    #: The protocol's fields and hash, the dataset, the seed, the entry's choices.
    params: Mapping[str, str] = field(default_factory=dict)
    #: The benchmark and entry, and each component's plugin, distribution and version.
    tags: Mapping[str, str] = field(default_factory=dict)
    #: Title -> markdown, for TensorBoard's text tab.
    texts: Mapping[str, str] = field(default_factory=dict)
    #: Where a local MLflow store lives when no ``MLFLOW_TRACKING_URI`` is set.
    runs_dir: Path = Path("runs")

    #: The final weights' file in the run folder, kept with ``HARNESS_TRACK_WEIGHTS=1``.
    weights: str | None = None

    @classmethod
    def of(
        cls,
        run: Mapping[str, Any],
        *,
        unit: str,
        name: str,
        group: str,
        runs_dir: Path,
        weights: str | None = None,
    ) -> RunAbout:
        """From the record's ``benchmark``, ``entry``, ``seed`` and ``fold`` in ``run``."""
        benchmark, entry = run["benchmark"], run["entry"]
        texts = {"benchmark": benchmark, "entry": entry}  # indented: markdown's code
        return cls(
            unit=unit,
            experiment=str(benchmark["id"]),
            name=name,
            group=group,
            params=dict(_params(benchmark, entry, {k: run.get(k) for k in ("seed", "fold")})),
            tags=dict(_tags(benchmark, entry)),
            texts={k: _code(json.dumps(v, indent=2)) for k, v in texts.items()},
            runs_dir=Path(runs_dir),
            weights=weights,
        )


def _code(text: str) -> str:
    return "    " + text.replace("\n", "\n    ")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _params(
    benchmark: Mapping[str, Any], entry: Mapping[str, Any], run: Mapping[str, Any]
) -> Iterator[tuple[str, str]]:
    protocol, dataset = benchmark["protocol"], benchmark["dataset"]
    yield "protocol.name", str(protocol["name"])
    yield "protocol.hash", str(protocol["hash"])
    for key, value in sorted(protocol.get("fields", {}).items()):
        yield f"protocol.{key}", _text(value)
    yield "dataset.name", str(dataset["name"])
    yield "dataset.fingerprint", str(dataset["fingerprint"])
    for key, value in run.items():
        if value is not None:
            yield key, _text(value)
    for kind in _KINDS:
        if kind in entry:
            yield f"entry.{kind}", str(entry[kind]["name"])
            if entry[kind].get("params"):
                yield f"entry.{kind}.params", _text(entry[kind]["params"])
    for key in ("effective_encoder", "tta"):
        if entry.get(key) is not None:
            yield f"entry.{key}", _text(entry[key])
    for key, value in sorted((entry.get("hparams") or {}).items()):
        yield f"entry.hparams.{key}", _text(value)


def _tags(benchmark: Mapping[str, Any], entry: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    yield "harness.benchmark", str(benchmark["id"])
    yield "harness.protocol_hash", str(benchmark["protocol"]["hash"])
    for kind in _KINDS:
        if kind in entry:
            component = entry[kind]
            yield f"harness.{kind}", str(component["name"])
            yield f"harness.{kind}.plugin", str(component.get("plugin"))
            where = f"{component.get('distribution')} {component.get('version')}"
            yield f"harness.{kind}.version", where


def epoch_scalars(metrics: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    """An epoch's scalars as every tracker names them: ``train/...``, ``val/mean_dice`` and
    each class's Dice under ``val_dice/``."""
    yield "train/epoch", float(metrics["epoch"])
    yield "train/epoch_loss", float(metrics["loss"])
    yield "train/lr", float(metrics["lr"])
    if "images_per_s" in metrics:
        yield "train/images_per_s", float(metrics["images_per_s"])
    if "val_mean_dice" in metrics:
        yield "val/mean_dice", float(metrics["val_mean_dice"])
    for name, dice in metrics.get("val_per_class_dice", {}).items():
        yield f"val_dice/{name}", float(dice)


def final_files(folder: Path, about: RunAbout) -> dict[str, Path]:
    """What a finished run leaves that the trackers keep, by the name each gets there: the
    record (as ``TRACKED_RECORD``), ``metrics.jsonl``, the pictures, and (with
    ``HARNESS_TRACK_WEIGHTS=1``) the final weights."""
    names = {
        TRACKED_RECORD: RECORD_NAME,
        **{name: name for name in (METRICS_NAME, CURVES, PER_CLASS, PREDICTION)},
    }
    if about.weights and os.environ.get(WEIGHTS_ENV) == "1":
        names[about.weights] = about.weights
    return {name: folder / local for name, local in names.items() if (folder / local).is_file()}


def read_state(folder: Path) -> dict[str, Any]:
    """``tracking.json`` of a run folder ({} when there is none or it cannot be read)."""
    try:
        state = json.loads((Path(folder) / STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(folder: Path, tracker: str, value: Mapping[str, Any]) -> None:
    """Note ``tracker``'s run in ``tracking.json`` (atomically, the others' notes kept)."""
    with _STATE_LOCK:
        state = read_state(folder)
        state[tracker] = dict(value)
        atomic_write_text(Path(folder) / STATE_NAME, json.dumps(state, indent=2) + "\n")
