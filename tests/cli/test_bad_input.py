"""Bad input, case by case: every one exits 2 (1 for a run that failed) with one line naming
the culprit, no traceback, and leaves an existing leaderboard byte for byte as it was.

Cases cover command-line options, protocol files, datasets, plugins, submissions,
checkpoints and records. Datasets are the 64 px phantom, copied and then broken; runs
use a small plugin model so that the ones that reach training take a second.
"""

from __future__ import annotations

import csv
import json
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.classes import CLASSES
from harness.results.leaderboard import regenerate
from harness.results.records import Record, read_record, write_record
from tests.helpers import PLUGIN

PLUGINS = {
    "broken_import.py": "import not_a_module_anywhere_xyz\n",
    "taken.py": """
from harness import hookimpl

@hookimpl
def harness_models():
    return {"unetpp": lambda **kw: None}
""",
    "bad_models.py": """
import os
import signal

import torch

from harness import hookimpl


def boom(**kw):
    raise RuntimeError("weights server unreachable")


class Half(torch.nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, num_classes, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Pair(Half):
    def forward(self, x):
        return self.conv(x), x


class Raises(Half):
    def forward(self, x):
        raise RuntimeError("index 7 is out of bounds")


class Flaky(torch.nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, num_classes, 3, padding=1)

    def forward(self, x):
        if os.environ.get("HARNESS_TEST_FLAKY") == "sigint":
            os.kill(os.getpid(), signal.SIGINT)  # what a Ctrl-C does
        elif os.environ.get("HARNESS_TEST_FLAKY"):
            raise RuntimeError("the flaky model broke this time")
        return self.conv(x)


class Oom(Half):
    def forward(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def make(cls):
    def factory(*, num_classes, in_channels, encoder=None):
        return cls(in_channels, num_classes)
    return factory


def nan_loss(**kw):
    def loss(logits, target):
        return (logits * float("nan")).mean()
    return loss


def vector_loss(**kw):
    def loss(logits, target):
        return (logits - target).abs().mean(dim=(1, 2, 3))
    return loss


@hookimpl
def harness_models():
    return {
        "boom": boom, "half-size": make(Half), "pair": make(Pair),
        "raises": make(Raises), "oom": make(Oom), "flaky": make(Flaky),
    }


@hookimpl
def harness_losses():
    return {"nan-loss": nan_loss, "vector-loss": vector_loss}
""",
}


@dataclass
class World:
    """What every case starts from: a phantom, plugins, a trained run and a leaderboard."""

    phantom: Path
    plugins: Path
    boards: Path
    trained_runs: Path  # a run interrupted after its last epoch: checkpoints, no record


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from harness.data.phantom import synthesize
    from harness.engine.events import NullObserver
    from harness.runs.dispatch import execute
    from harness.runs.planning import plan
    from harness.runs.requests import RunRequest

    root = tmp_path_factory.mktemp("world")
    phantom = synthesize(root / "phantom", ids=5, size=64)
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "small_cnn.py").write_text(PLUGIN)
    for name, text in PLUGINS.items():
        (plugins / name).write_text(text)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        # As if killed after the last checkpoint, before the record: the resume state stays.
        mp.setattr("harness.engine.checkpoint.retire", lambda *args, **kwargs: None)
        request = RunRequest.from_options(
            model="small-cnn",
            loss="dice",
            plugins=[str(plugins / "small_cnn.py")],
            data=phantom,
            protocol="tiny",
            sets=["epochs=1"],
            device="cpu",
            runs_dir=root / "trained",
            leaderboards_dir=root / "trained-boards",
        )
        execute(plan(request), NullObserver())
    (record,) = (root / "trained").rglob("record.json")
    record.unlink()  # as if killed after the last checkpoint: --resume has work to do
    boards = root / "boards"
    write_record(root / "board-runs" / "r" / "record.json", _record())
    regenerate(_record().benchmark["id"], root / "board-runs", boards)
    return World(phantom, plugins, boards, root / "trained")


def _record() -> Record:
    component = {"params": {}, "plugin": "p", "distribution": "harness", "version": "0"}
    names = ("model", "loss", "optimizer", "scheduler", "augmentation")
    return Record(
        status="succeeded",
        seed=0,
        mean_dice=0.5,
        per_class_dice={c: 0.5 for c in CLASSES},
        benchmark={
            "id": "tiny-abc__phantom-1234",
            "dataset": {"name": "phantom", "fingerprint": "1234" * 16},
            "protocol": {"name": "tiny", "label": "tiny", "hash": "abc", "fields": {"epochs": 2}},
        },
        entry={**{n: {**component, "name": n} for n in names}, "encoder": None},
        cost={"parameters": 1e6, "wall_s": 60, "device": "cpu"},
    )


# -- the cases -------------------------------------------------------------------------------

Case = Callable[[World, Path], tuple[list[str], str]]
CASES: dict[str, tuple[int, Case]] = {}


def case(name: str, code: int = 2) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[name] = (code, fn)
        return fn

    return register


def run(w: World, tmp: Path, *extra: str, model: str = "small-cnn", data: Path | None = None):
    args = [
        "run", "--model", model, "--loss", "dice", "--protocol", "tiny", "--set", "epochs=1",
        "--plugin", str(w.plugins / "small_cnn.py"), "--device", "cpu",
        "--data", str(data or w.phantom), "--runs-dir", str(tmp / "runs"),
        "--leaderboards-dir", str(w.boards),
    ]  # fmt: skip
    return [*args, *extra]


def broken_copy(w: World, tmp: Path) -> Path:
    data = tmp / "data"
    shutil.copytree(w.phantom, data)
    return data


def first(data: Path, kind: str) -> Path:
    folder = "DCM" if kind == "png" else "outputs_json"
    return sorted((data / "train" / folder).glob(f"*/*.{kind}"))[0]


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


# command-line options


@case("option-seeds-repeated")
def _(w, tmp):
    return run(w, tmp, "--seeds", "0,0"), "--seeds"


@case("option-device-unknown")
def _(w, tmp):
    return run(w, tmp, "--device", "tpu"), "--device 'tpu'"


@case("option-precision-unknown")
def _(w, tmp):
    return run(w, tmp, "--precision", "fp8"), "--precision 'fp8': choose auto, fp32, bf16 or fp16"


@case("option-precision-without-amp")
def _(w, tmp):
    line = (
        "--precision bf16: protocol 'tiny epochs=1 amp=false' sets amp = false (its benchmark "
        "trains in fp32); use --precision fp32 or auto, or --set amp=true (a benchmark of its own)"
    )
    return run(w, tmp, "--set", "amp=false", "--precision", "bf16"), line


@case("option-set-not-a-number")
def _(w, tmp):
    return run(w, tmp, "--set", "epochs=abc"), "--set epochs"


@case("option-set-negative-lr")
def _(w, tmp):
    return run(w, tmp, "--set", "lr=-1"), "lr must be > 0"


@case("option-unknown-model")
def _(w, tmp):
    return run(w, tmp, model="small-cn"), "small-cnn"


@case("option-plugin-file-missing")
def _(w, tmp):
    return run(w, tmp, "--plugin", str(tmp / "nowhere.py")), "nowhere.py"


# protocol files


def protocol_file(w: World, tmp: Path, text: str) -> list[str]:
    path = tmp / "mine.toml"
    path.write_text(text)
    args = run(w, tmp)
    args[args.index("tiny")] = str(path)
    return args


@case("protocol-not-toml")
def _(w, tmp):
    return protocol_file(w, tmp, 'name = "mine"\nepochs = = 3\n'), "mine.toml"


@case("protocol-unknown-field")
def _(w, tmp):
    return protocol_file(w, tmp, 'name = "mine"\nepochz = 3\n'), "'epochz'"


@case("protocol-bad-resolution")
def _(w, tmp):
    return protocol_file(w, tmp, 'name = "mine"\nresolution = 100\n'), "resolution"


@case("protocol-without-name")
def _(w, tmp):
    return protocol_file(w, tmp, "epochs = 1\n"), "mine.toml"


# datasets


@case("dataset-truncated-png")
def _(w, tmp):
    data = broken_copy(w, tmp)
    png = first(data, "png")
    png.write_bytes(png.read_bytes()[:200])
    return run(w, tmp, data=data), png.name


@case("dataset-unknown-label")
def _(w, tmp):
    data = broken_copy(w, tmp)
    label = first(data, "json")
    edit_json(label, lambda d: d["annotations"][0].update(label="finger-99"))
    return run(w, tmp, data=data), label.name


@case("dataset-two-point-polygon")
def _(w, tmp):
    data = broken_copy(w, tmp)
    label = first(data, "json")
    edit_json(label, lambda d: d["annotations"][3].update(points=d["annotations"][3]["points"][:2]))
    return run(w, tmp, data=data), label.name


@case("dataset-broken-json")
def _(w, tmp):
    data = broken_copy(w, tmp)
    label = first(data, "json")
    label.write_text('{"annotations": [')
    return run(w, tmp, data=data), label.name


@case("dataset-image-without-labels")
def _(w, tmp):
    data = broken_copy(w, tmp)
    label = first(data, "json")
    label.unlink()
    return run(w, tmp, data=data), label.stem


@case("dataset-point-outside-image")
def _(w, tmp):
    data = broken_copy(w, tmp)
    label = first(data, "json")
    edit_json(label, lambda d: d["annotations"][0]["points"].__setitem__(0, [640, 5]))
    return run(w, tmp, data=data), label.name


@case("dataset-empty")
def _(w, tmp):
    data = broken_copy(w, tmp)
    for png in (data / "train" / "DCM").rglob("*.png"):
        png.unlink()
    return run(w, tmp, data=data), "no PNG images"


@case("dataset-wrong-image-size")
def _(w, tmp):
    data = broken_copy(w, tmp)
    png = first(data, "png")
    cv2.imwrite(str(png), np.zeros((32, 48), dtype=np.uint8))
    return run(w, tmp, data=data), png.name


@case("dataset-missing-folder")
def _(w, tmp):
    return run(w, tmp, data=tmp / "no-such-data"), "no-such-data"


# plugins


@case("plugin-import-error")
def _(w, tmp):
    return run(w, tmp, "--plugin", str(w.plugins / "broken_import.py")), "broken_import.py"


@case("plugin-name-already-taken")
def _(w, tmp):
    return run(w, tmp, "--plugin", str(w.plugins / "taken.py")), "taken.py"


@case("plugin-factory-raises")
def _(w, tmp):
    args = run(w, tmp, "--plugin", str(w.plugins / "bad_models.py"), model="boom")
    return args, "model 'boom' from bad_models.py"


@case("plugin-model-wrong-shape")
def _(w, tmp):
    args = run(w, tmp, "--plugin", str(w.plugins / "bad_models.py"), model="half-size")
    return args, "model 'half-size' from bad_models.py (file) returned shape (4, 29, 32, 32)"


@case("plugin-model-returns-a-tuple")
def _(w, tmp):
    args = run(w, tmp, "--plugin", str(w.plugins / "bad_models.py"), model="pair")
    return args, "model 'pair' from bad_models.py (file) returned a tuple"


@case("plugin-loss-not-scalar")
def _(w, tmp):
    args = run(w, tmp, "--plugin", str(w.plugins / "bad_models.py"))
    args[args.index("dice")] = "vector-loss"
    return args, "loss 'vector-loss'"


# runs that fail (exit 1)


@case("run-non-finite-loss", code=1)
def _(w, tmp):
    args = run(w, tmp, "--plugin", str(w.plugins / "bad_models.py"))
    args[args.index("dice")] = "nan-loss"
    return args, "loss became nan at step 1 (epoch 1)"


@case("run-exception-in-model", code=1)
def _(w, tmp):
    args = run(w, tmp, "--plugin", str(w.plugins / "bad_models.py"), model="raises")
    return args, "RuntimeError at step 1 (epoch 1): index 7 is out of bounds"


@case("run-out-of-memory", code=1)
def _(w, tmp):
    args = run(w, tmp, "--plugin", str(w.plugins / "bad_models.py"), model="oom")
    return args, "out of memory on cpu"


# submissions


def submission(w: World, tmp: Path, edit: Callable[[list[list[str]]], None]) -> list[str]:
    images = sorted((w.phantom / "train" / "DCM").glob("*/*.png"))
    rows = [["image_name", "class", "rle"]]
    rows += [[image.name, c, "1 3"] for image in images for c in CLASSES]
    edit(rows)
    path = tmp / "sub.csv"
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return ["evaluate", "--data", str(w.phantom), "--submission", str(path)]


@case("submission-odd-rle")
def _(w, tmp):
    return submission(w, tmp, lambda rows: rows[5].__setitem__(2, "1 3 7")), "bad RLE"


@case("submission-wrong-header")
def _(w, tmp):
    return submission(w, tmp, lambda rows: rows.__setitem__(0, ["image", "class", "rle"])), "header"


@case("submission-unknown-image")
def _(w, tmp):
    def rename(rows: list[list[str]]) -> None:
        for row in rows[1:30]:
            row[0] = "image000.png"

    return submission(w, tmp, rename), "image000.png"


@case("submission-missing-rows")
def _(w, tmp):
    return submission(w, tmp, lambda rows: rows.pop(7)), "28 of 29 class rows"


@case("submission-path-in-image-name")
def _(w, tmp):
    def walk(rows: list[list[str]]) -> None:
        for row in rows[1:30]:
            row[0] = "../../etc/passwd"

    return submission(w, tmp, walk), "plain file name"


# checkpoints (--resume)


def resume_with(w: World, tmp: Path, damage: Callable[[Path], Path]) -> tuple[list[str], str]:
    shutil.copytree(w.trained_runs, tmp / "runs")
    (folder,) = (tmp / "runs").rglob("checkpoints")
    culprit = damage(folder)
    return [*run(w, tmp), "--resume"], str(culprit)


@case("checkpoint-corrupt-state")
def _(w, tmp):
    def damage(folder: Path) -> Path:
        (folder / "last.pt").write_bytes(b"PK\x03\x04 definitely not a zip" * 4)
        return folder / "last.pt"

    return resume_with(w, tmp, damage)


@case("checkpoint-truncated-state")
def _(w, tmp):
    def damage(folder: Path) -> Path:
        state = folder / "last.pt"
        state.write_bytes(state.read_bytes()[:300])
        return state

    return resume_with(w, tmp, damage)


@case("checkpoint-truncated-weights")
def _(w, tmp):
    def damage(folder: Path) -> Path:
        weights = folder / "last.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
        return weights

    return resume_with(w, tmp, damage)


class _Exploit:
    """Unpickling this creates the file ``path``: proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@case("checkpoint-pickle-that-runs-code")
def _(w, tmp):
    def damage(folder: Path) -> Path:
        exploit = _Exploit(tmp / "pwned")
        (folder / "last.pt").write_bytes(pickle.dumps({"x": exploit}, protocol=2))
        return folder / "last.pt"

    return resume_with(w, tmp, damage)


# records


@case("record-benchmark-id-walks-out")
def _(w, tmp):
    evil = _record()
    evil.benchmark = {**evil.benchmark, "id": "../../escaped"}
    write_record(tmp / "runs" / "x" / "record.json", evil)
    return ["leaderboard", "--runs-dir", str(tmp / "runs"), "--leaderboards-dir", str(w.boards)], (
        "no run records"
    )


def test_the_matrix_is_big_enough() -> None:
    assert len(CASES) >= 25
    kinds = {name.split("-")[0] for name in CASES}
    assert kinds >= {"option", "protocol", "dataset", "plugin", "submission", "checkpoint"}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(cli, world: World, tmp_path: Path, name: str) -> None:
    code, make = CASES[name]
    args, culprit = make(world, tmp_path)
    boards_before = _snapshot(world.boards)
    result = cli(*args)
    lines = [line for line in result.err.splitlines() if line.startswith("harness:")]
    assert result.code == code, (result.code, result.out, result.err)
    assert len(lines) == 1, result.err
    prefix = "harness: error: " if code == 2 else "harness: run failed: "
    assert lines[0].startswith(prefix), lines[0]
    assert culprit in lines[0], lines[0]
    assert "Traceback" not in result.err + result.out
    assert _snapshot(world.boards) == boards_before  # byte for byte, and no new table
    assert not (world.boards.parent.parent / "escaped.md").exists()
    assert not (tmp_path / "pwned").exists()  # no checkpoint ever ran code
    records = list((tmp_path / "runs").rglob("record.json")) if code == 1 else []
    for path in records:  # a run that failed says so, with the reason
        record = read_record(path)
        assert record is not None and record.status == "failed" and record.error


@pytest.mark.parametrize(
    "how, code, said",
    [("1", 1, "the flaky model broke this time"), ("sigint", 130, "this rerun was stopped")],
)
def test_a_failed_or_stopped_rerun_keeps_the_earlier_succeeded_record(
    cli,
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    code: int,
    said: str,
) -> None:
    boards = tmp_path / "boards"
    args = run(world, tmp_path, "--plugin", str(world.plugins / "bad_models.py"), model="flaky")
    args[args.index(str(world.boards))] = str(boards)
    first = cli(*args)
    assert first.code == 0, first.err
    (record,) = (tmp_path / "runs").rglob("record.json")
    folder = record.parent
    kept = {
        name: (folder / name).read_bytes() for name in ("record.json", "weights-final.safetensors")
    }
    table = _snapshot(boards)

    skipped = cli(*args)  # the same command: the finished run is skipped, said in one line
    assert skipped.code == 0 and "already succeeded" in skipped.err, skipped.err
    monkeypatch.setenv("HARNESS_TEST_FLAKY", how)
    again = cli(*args, "--rerun")
    assert again.code == code, again.err
    assert said in again.err
    assert "Resume with" not in again.err  # --resume would only skip the succeeded seed
    assert "the earlier succeeded record (mean Dice" in again.err
    assert "Traceback" not in again.err + again.out
    assert {name: (folder / name).read_bytes() for name in kept} == kept  # byte for byte
    assert _snapshot(boards) == table
    assert not (folder / "checkpoints").exists(), "the failed rerun's checkpoints were left"
