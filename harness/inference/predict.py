"""Predicting a submission from a finished run (``harness predict``).

A run folder is self-describing: ``record.json`` names the protocol's fields (resolution,
encoder, input channels, threshold, split) and the entry (the model plugin and its
parameters), and ``weights-final.safetensors`` holds the final epoch's weights — the ones
the record's Dice measured.  So the model is rebuilt through the same plugin registry,
the weights are loaded without pickle (a weights file cannot run code), and images are
scored exactly as validation scores them: the same resizing, the same autocast, logits
upsampled to the original size and thresholded with ``harness.metric.dice.logits_to_masks``.
The CSV is written one image at a time (rows are generated while the file is written,
atomically), so memory holds one image's 29 full-size masks at most.

Several runs of one benchmark predict as an ensemble: their sigmoid probabilities are
averaged (``ensemble_logits``), and on the validation split each member's Dice is scored
beside the ensemble's, so one sees whether the ensemble beats its members.

A test-time augmentation (a ``harness_tta`` plugin: ``--tta hflip`` averages the logits of
the image and of its mirror, flipped back) is applied before the threshold by
``harness.engine.inference.tta_logits``, the one place that does it, for ``harness predict``
and for validation alike. A post-processor (a ``harness_postprocessors`` plugin, for the
classes ``--postprocess-classes`` names: what ``harness select`` chose) is applied to the
thresholded masks, before they are written and scored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from harness.classes import CLASSES
from harness.components.contracts import Postprocessing, Transform, build_postprocessing
from harness.components.registry import Registry
from harness.engine.device import Placement, Unavailable, resolve_device
from harness.engine.inference import TTA, resolve_tta, tta_logits
from harness.errors import HarnessError
from harness.results.records import RECORD_NAME, WEIGHTS_NAME

SPLITS = ("test", "val")

Progress = Callable[[int, int], None]


@dataclass
class LoadedRun:
    """A finished run rebuilt for inference: its record, protocol and model (in eval mode)."""

    run_dir: Path
    record: dict[str, Any]
    protocol: Any  # harness.protocol.Protocol
    model: torch.nn.Module
    model_name: str


def _read_record(run_dir: Path) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise HarnessError(
            f"{run_dir}: run folder not found; pass the folder holding record.json "
            "(runs/<benchmark>/<entry>/seed-N)"
        )
    path = run_dir / RECORD_NAME
    if not path.is_file():
        raise HarnessError(f"{path}: missing; is {run_dir} a run folder (runs/.../seed-N)?")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HarnessError(f"{path}: not a readable run record ({reason})") from None
    if not isinstance(record, dict):
        raise HarnessError(f"{path}: not a run record (the top level must be an object)")
    if record.get("status") != "succeeded":
        why = f" ({record['error']})" if record.get("error") else ""
        raise HarnessError(
            f"{path}: the run's status is {record.get('status')!r}{why}; only a succeeded "
            "run has final weights to predict with"
        )
    return record


def _field(record: dict[str, Any], path: Path, *keys: str) -> Any:
    value: Any = record
    for i, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise HarnessError(
                f"{path}: missing {'.'.join(keys[: i + 1])}; the record is incomplete or "
                "from an incompatible harness version"
            )
        value = value[key]
    return value


def load_run(
    run_dir: Path, *, device: torch.device | str = "cpu", plugins: Sequence[str] = ()
) -> LoadedRun:
    """Rebuild a run's final model from its folder; any problem names the file at fault."""
    from safetensors.torch import load_file

    from harness import protocol as protocols
    from harness.components.contracts import build_model
    from harness.components.registry import Registry

    run_dir = Path(run_dir)
    record = _read_record(run_dir)
    record_path = run_dir / RECORD_NAME
    fields = _field(record, record_path, "benchmark", "protocol", "fields")
    name = _field(record, record_path, "benchmark", "protocol", "name")
    model_entry = _field(record, record_path, "entry", "model")
    if not isinstance(fields, dict) or not isinstance(model_entry, dict):
        raise HarnessError(
            f"{record_path}: benchmark.protocol.fields and entry.model must be objects"
        )
    model_name = _field(record, record_path, "entry", "model", "name")
    params = model_entry.get("params") or {}
    try:
        protocol = protocols.from_mapping({**fields, "name": name}, str(record_path))
    except HarnessError as exc:
        raise HarnessError(f"{exc} (benchmark.protocol.fields)") from None
    if record.get("fold") is not None:  # a fold of a cross-validated entry validates on it
        protocol = replace(protocol, fold=int(record["fold"]))
    entry = record["entry"]
    encoder = entry.get("effective_encoder") or entry.get("encoder") or protocol.encoder

    try:
        component = Registry.load(plugins).get("models", model_name)
    except HarnessError as exc:
        raise HarnessError(
            f"{record_path}: the run's model {model_name!r} is not available: {exc}; "
            "pass the plugin it came from with --plugin"
        ) from None
    model = build_model(component, in_channels=protocol.in_channels, encoder=encoder, **params)

    weights = run_dir / WEIGHTS_NAME
    if not weights.is_file():
        raise HarnessError(
            f"{weights}: missing; the run folder has no final weights (re-run it, or copy the "
            "whole run folder)"
        )
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as exc:  # safetensors raises its own error type for corrupt files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HarnessError(f"{weights}: not a readable safetensors file ({reason})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:300]
        raise HarnessError(
            f"{weights}: does not fit model {model_name!r} with encoder {encoder!r} ({reason})"
        ) from None
    del state
    memory_format = torch.channels_last if protocol.channels_last else torch.contiguous_format
    model = model.to(device=torch.device(device), memory_format=memory_format).eval()
    return LoadedRun(run_dir, record, protocol, model, model_name)


def images_for(data: Path, split: str, protocol: Any) -> list[Path]:
    """``test/DCM`` images, or the protocol's validation fold of ``train/DCM``, sorted."""
    from harness.data.layout import list_images
    from harness.data.layout import split as split_images

    if split == "test":
        images = list_images(data, "test")
    elif split == "val":
        images = split_images(list_images(data, "train"), protocol.folds, protocol.fold)[1]
    else:
        raise HarnessError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    images = sorted(images)
    seen: dict[str, Path] = {}
    for image in images:
        if image.name in seen:
            raise HarnessError(
                f"{image}: same base name as {seen[image.name]}; a submission names images "
                "by base name, so they must be unique"
            )
        seen[image.name] = image
    return images


def load_ensemble(
    run_dirs: Sequence[Path], *, device: torch.device | str = "cpu", plugins: Sequence[str] = ()
) -> list[LoadedRun]:
    """Rebuild every run of an ensemble; all must be runs of one benchmark (the first's). An
    entry's folder (``runs/<benchmark>/<entry>``) stands for all its runs: a cross-validated
    entry's fold models, ensembled as nnU-Net does."""
    if not run_dirs:
        raise HarnessError("predict: give at least one RUN_DIR")
    runs: list[LoadedRun] = []
    for run_dir in (run for given in run_dirs for run in _runs_in(Path(given))):
        run = load_run(Path(run_dir), device=device, plugins=plugins)
        if runs and _benchmark_of(run) != _benchmark_of(runs[0]):
            raise HarnessError(
                f"{run.run_dir}: a run of benchmark {_benchmark_of(run)!r}, not "
                f"{_benchmark_of(runs[0])!r} as {runs[0].run_dir}; an ensemble averages runs "
                "of one benchmark (same protocol, same dataset)"
            )
        runs.append(run)
    return runs


def _runs_in(folder: Path) -> list[Path]:
    """``folder`` itself when it is a run, else the runs directly inside it (an entry's)."""
    if (folder / RECORD_NAME).is_file() or not folder.is_dir():
        return [folder]
    inside = sorted(p.parent for p in folder.glob(f"*/{RECORD_NAME}"))
    return inside or [folder]


def _benchmark_of(run: LoadedRun) -> str:
    return str(run.record.get("benchmark", {}).get("id"))


def ensemble_logits(
    models: Sequence[torch.nn.Module], x: torch.Tensor, tta: TTA = "none"
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each model's logits, and the ensemble's: the logit of the mean sigmoid probability.

    One model is its own ensemble (its logits unchanged, bit for bit).
    """
    members = [tta_logits(model, x, tta) for model in models]
    if len(members) == 1:
        return members, members[0]
    probabilities = torch.stack([m.float().sigmoid() for m in members]).mean(0)
    return members, torch.logit(probabilities, eps=ENSEMBLE_EPS)


#: Probabilities are clamped to [eps, 1 - eps] before the logit (finite at 0 and 1).
ENSEMBLE_EPS = 1e-7


@dataclass
class ValScores:
    """Dice of each member and of the ensemble on labelled images, scored as validation is."""

    members: list[Any]  # harness.metric.dice.DiceAccumulator, one per run
    ensemble: Any
    truth: Callable[[int], torch.Tensor]

    @classmethod
    def for_images(cls, images: Sequence[Path], protocol: Any, members: int) -> ValScores:
        from harness.data.datasets import EvalDataset
        from harness.metric.dice import DiceAccumulator

        dataset = EvalDataset(images, protocol.resolution)

        def accumulator() -> DiceAccumulator:
            return DiceAccumulator(threshold=protocol.threshold)

        # One run is its own ensemble: scored once.
        alone = [accumulator() for _ in range(members)] if members > 1 else []
        return cls(alone, accumulator(), dataset.truth)

    def member_dice(self) -> tuple[float, ...]:
        """Each member's mean Dice (one run: the ensemble's)."""
        return tuple(s.mean() for s in self.members) or (self.ensemble.mean(),)

    def add(
        self, index: int, name: str, members: list[torch.Tensor], ensemble: torch.Tensor
    ) -> None:
        """Each member's logits and the ensemble's final masks (thresholded and, when asked,
        post-processed: what the submission holds) scored against image ``index``'s truth."""
        truth = self.truth(index)
        for scores, logits in zip(self.members, members if self.members else [], strict=True):
            scores.add_logits(logits, truth, name=name)
        self.ensemble.add_masks(ensemble, truth, name=name)


def _as_runs(run: LoadedRun | Sequence[LoadedRun]) -> list[LoadedRun]:
    return [run] if isinstance(run, LoadedRun) else list(run)


def predict_rows(
    run: LoadedRun | Sequence[LoadedRun],
    images: Sequence[Path],
    *,
    tta: TTA = "none",
    batch_size: int | None = None,
    num_workers: int = 0,
    progress: Progress | None = None,
    scores: ValScores | None = None,
    postprocess: Postprocessing | None = None,
) -> Iterator[tuple[str, str, str]]:
    """Submission rows ``(image_name, class, rle)``, image by image in the given order.

    Several runs predict as an ensemble (``ensemble_logits``) under the test-time
    augmentation ``tta`` (a plugin's name, or its transforms); ``postprocess`` changes the
    thresholded masks of the classes it was chosen for. ``scores`` (labelled images only) is
    given each member's logits and the ensemble's final masks as the rows are made.
    """
    from harness.data.datasets import PredictDataset
    from harness.metric.dice import logits_to_masks
    from harness.metric.rle import encode

    runs = _as_runs(run)
    transforms = resolve_tta(tta)
    protocol = runs[0].protocol
    batch_size = batch_size or protocol.batch_size
    if batch_size < 1:
        raise HarnessError(f"--batch-size {batch_size}: must be at least 1")
    device = next(runs[0].model.parameters()).device
    dataset = PredictDataset(images, protocol.resolution)
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, pin_memory=device.type == "cuda"
    )
    done = 0
    if progress is not None:
        progress(done, len(dataset))
    with torch.inference_mode():
        for inputs, indices, heights, widths in loader:
            members, logits = _batch_logits(runs, inputs, device, transforms)
            for i, (row, index, height, width) in enumerate(
                zip(logits, indices.tolist(), heights.tolist(), widths.tolist(), strict=True)
            ):
                name = dataset.paths[index].name
                masks = logits_to_masks(row, (height, width), protocol.threshold).cpu().numpy()
                if postprocess is not None:
                    masks = postprocess(masks)
                if scores is not None:
                    scores.add(index, name, [m[i] for m in members], torch.from_numpy(masks))
                for cls, mask in zip(CLASSES, masks, strict=True):
                    yield name, cls, encode(mask)
                del masks
                done += 1
                if progress is not None:
                    progress(done, len(dataset))
            del logits, members


def _batch_logits(
    runs: Sequence[LoadedRun], inputs: torch.Tensor, device: torch.device, tta: TTA
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One batch through every run, as validation feeds it (channels, memory format, autocast)."""
    protocol = runs[0].protocol
    x = inputs.to(device, non_blocking=True)
    if protocol.in_channels != x.shape[1]:
        x = x.expand(-1, protocol.in_channels, -1, -1)
    placement = Placement.of(protocol, device)
    x = x.contiguous(memory_format=placement.memory_format)
    with placement.autocast():
        return ensemble_logits([run.model for run in runs], x, tta)


@dataclass(frozen=True)
class Prediction:
    """What ``predict_ensemble`` wrote, and on the validation split what it scored."""

    path: Path
    runs: tuple[Path, ...]
    #: Mean Dice of each run alone (in ``runs`` order) and of the ensemble: ``--split val``.
    member_dice: tuple[float, ...] | None = None
    ensemble_dice: float | None = None


@dataclass(frozen=True)
class PredictOptions:
    """How to predict: the images (``split``: ``test``, or the protocol's validation fold
    ``val``), the test-time augmentation (a ``harness_tta`` plugin's name), the
    post-processor (a ``harness_postprocessors`` plugin's name) and the classes it is for
    (None: every class), the device, the images per forward pass (None: the protocol's
    batch), the data-loader workers, the plugins the runs' models (and the test-time
    augmentation and post-processor) came from, and whether the validation split is scored
    (each member and the ensemble)."""

    split: str = "test"
    tta: str = "none"
    device: str = "auto"
    batch_size: int | None = None
    num_workers: int = 0
    plugins: Sequence[str] = ()
    score: bool = True
    postprocessor: str = "none"
    postprocess_classes: tuple[str, ...] | None = None

    def after_training(self) -> tuple[tuple[Transform, ...], Postprocessing | None]:
        """The test-time augmentation's transforms and the post-processing, built through
        the registry (``--tta``, ``--postprocessor`` name the plugin in a one-line error)."""
        if self.tta == "none" and self.postprocessor == "none":
            return (), None
        registry = Registry.load(self.plugins)
        try:
            transforms = resolve_tta(self.tta, registry)
        except HarnessError as exc:
            raise HarnessError(f"--tta {self.tta}: {exc}") from None
        if self.postprocessor == "none":
            return transforms, None
        try:
            post = build_postprocessing(
                registry, self.postprocessor, self.postprocess_classes, "--postprocess-classes"
            )
        except HarnessError as exc:
            raise HarnessError(f"--postprocessor {self.postprocessor}: {exc}") from None
        return transforms, post


def predict_ensemble(
    run_dirs: Sequence[Path],
    data: Path,
    out: Path,
    options: PredictOptions = PredictOptions(),
    *,
    progress: Progress | None = None,
) -> Prediction:
    """Predict ``data``'s test images (or validation fold) with one run or an ensemble of
    runs of one benchmark (their sigmoid probabilities averaged); write the CSV to ``out``.

    The CSV is the competition's (``harness.metric.submission``): 29 rows per image in class
    order, images sorted by path. On the validation split (and ``options.score``) every
    member and the ensemble are also scored, exactly as validation scores
    (``harness.metric.dice``).
    """
    from harness.metric.submission import write_submission

    if options.split not in SPLITS:
        raise HarnessError(f"--split {options.split!r}: choose one of {', '.join(SPLITS)}")
    transforms, postprocess = options.after_training()  # before any model loads
    out = Path(out)
    if out.is_dir():
        raise HarnessError(f"--out {out}: is a folder; give a file name such as submission.csv")
    try:
        device = resolve_device(options.device)
    except Unavailable as exc:
        raise HarnessError(exc.said("--device")) from None
    runs = load_ensemble(run_dirs, device=device, plugins=options.plugins)
    if options.split == "val" and len({run.protocol.fold for run in runs}) > 1:
        raise HarnessError(
            "--split val: these runs validate on different folds (a cross-validated entry's "
            "fold models); predict --split test with them, or give the runs of one fold"
        )
    images = images_for(Path(data), options.split, runs[0].protocol)
    scores = None
    if options.split == "val" and options.score:
        scores = ValScores.for_images(images, runs[0].protocol, len(runs))
    rows = predict_rows(
        runs,
        images,
        tta=transforms,
        batch_size=options.batch_size,
        num_workers=options.num_workers,
        progress=progress,
        scores=scores,
        postprocess=postprocess,
    )
    write_submission(out, rows)
    if scores is None or not images:
        return Prediction(out, tuple(r.run_dir for r in runs))
    return Prediction(
        out, tuple(r.run_dir for r in runs), scores.member_dice(), scores.ensemble.mean()
    )


def predict_submission(
    run_dir: Path,
    data: Path,
    out: Path,
    options: PredictOptions = PredictOptions(),
    *,
    progress: Progress | None = None,
) -> Path:
    """Predict ``data``'s test images (or validation fold) with one run; write the CSV to
    ``out`` and return it (``predict_ensemble`` with one run, never scored)."""
    options = replace(options, score=False)
    return predict_ensemble([run_dir], data, out, options, progress=progress).path
