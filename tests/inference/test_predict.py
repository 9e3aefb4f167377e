"""harness predict: a run folder rebuilt into a submission; TTA; every broken input named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import protocol as protocols
from harness.classes import CLASSES
from harness.components.registry import Registry
from harness.data.layout import list_images, split
from harness.errors import HarnessError
from harness.inference.predict import (
    WEIGHTS_NAME,
    PredictOptions,
    ensemble_logits,
    load_run,
    predict_ensemble,
    predict_submission,
    tta_logits,
)
from harness.metric.evaluate import evaluate_submission
from harness.metric.rle import decode
from harness.metric.submission import HEADER, read_submission
from harness.runs.seed import save_weights


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness.data.phantom import synthesize

    return synthesize(tmp_path_factory.mktemp("predict") / "data", ids=5, size=80, test_ids=1)


def make_run(
    folder: Path,
    *,
    model: str = "unet",
    params: dict | None = None,
    seed: int = 0,
    benchmark: str = "x",
) -> Path:
    """A run folder as ``harness run`` leaves it: record.json and the final weights."""
    proto = protocols.load("tiny")
    params = params or {}
    torch.manual_seed(seed)
    net = (
        Registry.load()
        .get("models", model)
        .build(num_classes=len(CLASSES), in_channels=1, encoder=proto.encoder, **params)
    )
    record = {
        "status": "succeeded",
        "seed": 0,
        "mean_dice": 0.5,
        "per_class_dice": {},
        "benchmark": {
            "id": benchmark,
            "protocol": {"name": "tiny", "hash": proto.hash, "fields": proto.hashed_fields()},
        },
        "entry": {
            "model": {"name": model, "params": params},
            "encoder": None,
            "effective_encoder": proto.encoder,
        },
    }
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(record))
    save_weights(folder / WEIGHTS_NAME, net)
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "seed-0")


def test_test_split_submission_is_complete_and_decodes(
    run_dir: Path, data: Path, tmp_path: Path
) -> None:
    out = predict_submission(
        run_dir, data, tmp_path / "sub" / "test.csv", PredictOptions(device="cpu")
    )
    assert out == tmp_path / "sub" / "test.csv"
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(HEADER)
    images = list_images(data, "test")
    assert len(lines) == 1 + len(images) * len(CLASSES)
    assert [line.split(",")[0] for line in lines[1 :: len(CLASSES)]] == [i.name for i in images]
    assert [line.split(",")[1] for line in lines[1:30]] == list(CLASSES)
    rows = read_submission(out)
    for masks in rows.values():
        for rle in masks.values():
            assert decode(rle, 80, 80).shape == (80, 80)
    assert [p.name for p in out.parent.iterdir()] == ["test.csv"]


def test_val_split_matches_scoring_the_model_directly(
    run_dir: Path, data: Path, tmp_path: Path
) -> None:
    from harness.data.datasets import EvalDataset
    from harness.metric.dice import DiceAccumulator

    out = predict_submission(
        run_dir, data, tmp_path / "val.csv", PredictOptions(split="val", batch_size=1)
    )
    val = split(list_images(data), 5, 0)[1]
    assert list(read_submission(out)) == [p.name for p in val]
    scored = evaluate_submission(data, out)

    # The same images scored straight from logits, as training's validation does.
    run = load_run(run_dir)
    dataset = EvalDataset(val, run.protocol.resolution)
    acc = DiceAccumulator(threshold=run.protocol.threshold)
    with torch.no_grad():
        for i in range(len(dataset)):
            logits = run.model(dataset[i][0][None])[0]
            acc.add_logits(logits, dataset.truth(i), name=dataset.paths[i].name)
    assert scored.mean_dice == pytest.approx(acc.mean(), abs=1e-12)


def test_flip_tta_averages_logits_before_the_threshold(
    run_dir: Path, data: Path, tmp_path: Path
) -> None:
    ramp = torch.linspace(-1, 1, 8).expand(1, 1, 4, 8)

    class Shifted(torch.nn.Module):  # f(x) = x + ramp: not flip-equivariant
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + ramp

    x = torch.randn(2, 1, 4, 8)
    assert torch.equal(tta_logits(Shifted(), x, "none"), x + ramp)
    torch.testing.assert_close(tta_logits(Shifted(), x, "flip"), x + (ramp + ramp.flip(-1)) / 2)
    torch.testing.assert_close(tta_logits(Shifted(), x, "hflip"), tta_logits(Shifted(), x, "flip"))
    with pytest.raises(HarnessError, match="unknown tta 'rot'"):
        tta_logits(Shifted(), x, "rot")

    plain = predict_submission(run_dir, data, tmp_path / "a.csv", PredictOptions(split="val"))
    flipped = predict_submission(
        run_dir, data, tmp_path / "b.csv", PredictOptions(split="val", tta="flip")
    )
    assert plain.read_text() != flipped.read_text()
    assert list(read_submission(flipped)) == list(read_submission(plain))


def test_bad_arguments(run_dir: Path, data: Path, tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="--split 'train'"):
        predict_submission(run_dir, data, tmp_path / "s.csv", PredictOptions(split="train"))
    with pytest.raises(HarnessError, match="--tta both: unknown tta 'both'"):
        predict_submission(run_dir, data, tmp_path / "s.csv", PredictOptions(tta="both"))
    with pytest.raises(HarnessError, match="--postprocessor fill: unknown postprocessor 'fill'"):
        predict_submission(run_dir, data, tmp_path / "s.csv", PredictOptions(postprocessor="fill"))
    wrong_class = PredictOptions(postprocessor="fill-holes", postprocess_classes=("Radiuss",))
    with pytest.raises(HarnessError, match="--postprocess-classes 'Radiuss'.*Radius"):
        predict_submission(run_dir, data, tmp_path / "s.csv", wrong_class)
    with pytest.raises(HarnessError, match="is a folder"):
        predict_submission(run_dir, data, tmp_path)
    with pytest.raises(HarnessError, match="nowhere"):
        predict_submission(run_dir, tmp_path / "nowhere", tmp_path / "s.csv")


def _broken(folder: Path, how: str) -> str:
    """Break a copy of a run folder; returns the file name the error must name."""
    record = folder / "record.json"
    weights = folder / WEIGHTS_NAME
    if how == "no_folder":
        shutil.rmtree(folder)
        return folder.name
    if how == "no_record":
        record.unlink()
        return "record.json"
    if how == "bad_json":
        record.write_text("{")
        return "record.json"
    if how == "failed":
        doc = json.loads(record.read_text())
        doc.update(status="failed", error="loss became nan")
        record.write_text(json.dumps(doc))
        return "record.json"
    if how == "no_fields":
        doc = json.loads(record.read_text())
        del doc["benchmark"]["protocol"]["fields"]
        record.write_text(json.dumps(doc))
        return "record.json"
    if how == "unknown_model":
        doc = json.loads(record.read_text())
        doc["entry"]["model"]["name"] = "mystery-net"
        record.write_text(json.dumps(doc))
        return "record.json"
    if how == "no_weights":
        weights.unlink()
        return WEIGHTS_NAME
    if how == "corrupt_weights":
        weights.write_bytes(b"\x00" * 64)
        return WEIGHTS_NAME
    if how == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        return WEIGHTS_NAME
    if how == "other_model":
        doc = json.loads(record.read_text())
        doc["entry"]["model"]["name"] = "fpn"
        record.write_text(json.dumps(doc))
        return WEIGHTS_NAME
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ("no_folder", "run folder not found"),
        ("no_record", "missing"),
        ("bad_json", "not a readable run record"),
        ("failed", "loss became nan"),
        ("no_fields", "benchmark.protocol.fields"),
        ("unknown_model", "mystery-net"),
        ("no_weights", "missing"),
        ("corrupt_weights", "not a readable safetensors file"),
        ("truncated_weights", "not a readable safetensors file"),
        ("other_model", "does not fit model 'fpn'"),
    ],
)
def test_broken_run_folders_name_the_file(
    run_dir: Path, data: Path, tmp_path: Path, how: str, needle: str
) -> None:
    folder = Path(shutil.copytree(run_dir, tmp_path / "seed-0"))
    culprit = _broken(folder, how)
    with pytest.raises(HarnessError) as info:
        predict_submission(folder, data, tmp_path / "s.csv")
    message = str(info.value)
    assert culprit in message and needle in message and "\n" not in message
    assert not (tmp_path / "s.csv").exists()


def test_weights_are_never_unpickled(run_dir: Path) -> None:
    # A safetensors file holds only tensors; a pickle file under that name is refused.
    folder = Path(shutil.copytree(run_dir, run_dir.parent / "pickled"))
    torch.save({"evil": np.zeros(1)}, folder / WEIGHTS_NAME)
    with pytest.raises(HarnessError, match="not a readable safetensors file"):
        load_run(folder)


# -- ensembles ----------------------------------------------------------------------------------


def test_ensemble_logits_average_probabilities_and_one_model_is_itself() -> None:
    class Const(torch.nn.Module):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full_like(x, self.value)

    x = torch.randn(2, 1, 4, 8)
    members, logits = ensemble_logits([Const(2.0), Const(-1.0)], x)
    assert [m[0, 0, 0, 0].item() for m in members] == [2.0, -1.0]
    mean = (torch.sigmoid(torch.tensor(2.0)) + torch.sigmoid(torch.tensor(-1.0))) / 2
    torch.testing.assert_close(logits, torch.full_like(x, torch.logit(mean).item()))
    # Not the mean of the logits (0.5): the probabilities are averaged.
    assert abs(logits[0, 0, 0, 0].item() - 0.5) > 0.01
    alone = Const(3.0)
    members, logits = ensemble_logits([alone], x)
    assert logits is members[0] and torch.equal(logits, alone(x))


@pytest.fixture(scope="module")
def second_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "seed-1", seed=1)


def test_val_ensemble_scores_each_member_and_itself_as_evaluate_does(
    run_dir: Path, second_run: Path, data: Path, tmp_path: Path
) -> None:
    result = predict_ensemble(
        [run_dir, second_run], data, tmp_path / "ens.csv", PredictOptions(split="val", device="cpu")
    )
    assert result.runs == (run_dir, second_run) and result.path == tmp_path / "ens.csv"
    # Each member's Dice is what its own submission scores; the ensemble's is its CSV's.
    for member, dice in zip((run_dir, second_run), result.member_dice, strict=True):
        alone = predict_submission(
            member, data, tmp_path / f"{member.name}.csv", PredictOptions(split="val")
        )
        assert dice == pytest.approx(evaluate_submission(data, alone).mean_dice, abs=1e-12)
    ensemble = evaluate_submission(data, result.path).mean_dice
    assert result.ensemble_dice == pytest.approx(ensemble, abs=1e-12)
    assert result.member_dice[0] != result.member_dice[1]
    assert read_submission(result.path).keys() == read_submission(tmp_path / "seed-0.csv").keys()
    # The test split: a submission, nothing scored.
    test = predict_ensemble(
        [run_dir, second_run], data, tmp_path / "t.csv", PredictOptions(tta="flip")
    )
    assert test.member_dice is None and test.ensemble_dice is None
    assert list(read_submission(test.path)) == [p.name for p in list_images(data, "test")]


def test_one_run_is_scored_once_and_its_csv_is_unchanged(
    run_dir: Path, data: Path, tmp_path: Path
) -> None:
    result = predict_ensemble([run_dir], data, tmp_path / "one.csv", PredictOptions(split="val"))
    plain = predict_submission(run_dir, data, tmp_path / "plain.csv", PredictOptions(split="val"))
    assert result.path.read_bytes() == plain.read_bytes()
    assert result.member_dice == (result.ensemble_dice,)


def test_runs_of_another_benchmark_are_named(run_dir: Path, data: Path, tmp_path: Path) -> None:
    other = make_run(tmp_path / "elsewhere" / "seed-0", benchmark="y")
    with pytest.raises(HarnessError) as info:
        predict_ensemble([run_dir, other], data, tmp_path / "e.csv", PredictOptions(split="val"))
    message = str(info.value)
    assert message.startswith(f"{other}: a run of benchmark 'y', not 'x'") and "\n" not in message
    assert not (tmp_path / "e.csv").exists()
    with pytest.raises(HarnessError, match="at least one RUN_DIR"):
        predict_ensemble([], data, tmp_path / "e.csv")


def test_tta_plugins_and_postprocessing_for_chosen_classes(
    run_dir: Path, data: Path, tmp_path: Path
) -> None:
    """``--tta multiscale:low=0.5`` is a plugin's, with its parameters (at 64 px: 32 and 64);
    a post-processor changes only the classes named."""
    plain = predict_submission(run_dir, data, tmp_path / "a.csv", PredictOptions(split="val"))
    scaled = predict_submission(
        run_dir, data, tmp_path / "b.csv", PredictOptions(split="val", tta="multiscale:low=0.5")
    )
    assert plain.read_text() != scaled.read_text()
    chosen = ("finger-1", "Radius")
    options = PredictOptions(
        split="val", postprocessor="largest-component", postprocess_classes=chosen
    )
    post = read_submission(predict_submission(run_dir, data, tmp_path / "c.csv", options))
    before = read_submission(plain)
    changed = {c for image in before for c in CLASSES if before[image][c] != post[image][c]}
    assert changed and changed <= set(chosen)
