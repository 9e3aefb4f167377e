"""What several test modules share: the small test model, records, an observer that listens,
a full disk (a small tmpfs filled up, or a fault-injecting writer).

Test modules import from here (``from tests.helpers import ...``), never from one another;
shared fixtures live in ``conftest.py`` (this folder's for all tests, a subfolder's for its
own).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console

import harness
from harness.classes import CLASSES
from harness.results.records import Record, write_record

#: The repository's root (``scripts/``, ``leaderboards/``, ``examples/``).
REPO = Path(__file__).resolve().parents[1]

# The small test model, as a plugin file's text.

#: The test model. ``HARNESS_TEST_SIGINT=train:K`` (or ``eval:K``) makes it send itself
#: SIGINT at its K-th forward pass in that mode, which is what a Ctrl-C does.
#: ``HARNESS_TEST_OVERFLOW=K`` makes the gradients of the run's K-th training step infinite
#: (counted by its BatchNorm, so across a resume too): what fp16's grad scaler skips.
PLUGIN = """
import os
import signal
import time

import torch

from harness import hookimpl


class Overflow(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


class Small(torch.nn.Module):
    def __init__(self, in_channels, num_classes, delay):
        super().__init__()
        self.delay = delay
        self.calls = {"train": 0, "eval": 0}
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, 8, 3, padding=1),
            torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.Dropout2d(0.2),
            torch.nn.Conv2d(8, num_classes, 1),
        )

    def forward(self, x):
        mode = "train" if self.training else "eval"
        self.calls[mode] += 1
        if os.environ.get("HARNESS_TEST_SIGINT") == f"{mode}:{self.calls[mode]}":
            os.kill(os.getpid(), signal.SIGINT)
        if self.delay:
            time.sleep(self.delay)
        out = self.body(x)
        steps = int(self.body[1].num_batches_tracked)  # this one included, saved with the weights
        if self.training and os.environ.get("HARNESS_TEST_OVERFLOW") == str(steps):
            out = Overflow.apply(out)
        return out


def small_cnn(*, num_classes, in_channels, encoder=None, delay=0.0):
    return Small(in_channels, num_classes, float(delay))


@hookimpl
def harness_models():
    return {"small-cnn": small_cnn}
"""

#: A third-party optimizer that declares its tuning space: a protocol field (``lr``) and one
#: of its own parameters (``dampening``); ``harness tune`` searches weight decay over the
#: protocol's range. ``SPACED_BAD`` declares a log range that reaches 0.
SPACED_OPTIMIZER = """
import torch

from harness import hookimpl, tunable


@tunable(lr=(1e-3, 0.3, "log"), dampening=(0.0, 0.5))
def damped_sgd(params, *, lr, weight_decay, dampening: float = 0.1):
    \"\"\"SGD with momentum 0.9 and some dampening.\"\"\"
    return torch.optim.SGD(
        params, lr=lr, weight_decay=weight_decay, momentum=0.9, dampening=dampening
    )


@hookimpl
def harness_optimizers():
    return {"damped-sgd": damped_sgd}
"""
SPACED_BAD = SPACED_OPTIMIZER.replace("dampening=(0.0, 0.5))", "dampening=(0.0, 0.5, 'log'))")


def spaced_plugin(folder: Path, bad: bool = False) -> Path:
    """``SPACED_OPTIMIZER`` (or ``SPACED_BAD``) as a plugin file in ``folder``."""
    path = folder / ("bad_space.py" if bad else "damped.py")
    path.write_text(SPACED_BAD if bad else SPACED_OPTIMIZER)
    return path


#: tiny with 4 epochs of 8 one-image steps, 2 validation batches per epoch.
STEPS_PER_EPOCH = 8


def run_args(plugin: Path, runs: Path, boards: Path) -> list[str]:
    return [
        "run", "--model", "small-cnn:delay=0.03", "--loss", "dice", "--augmentation", "basic",
        "--plugin", str(plugin), "--protocol", "tiny", "--set", "epochs=4",
        "--set", "batch_size=1", "--device", "cpu",
        "--runs-dir", str(runs), "--leaderboards-dir", str(boards),
    ]  # fmt: skip


def record_of(runs: Path) -> dict:
    (path,) = runs.rglob("record.json")
    return json.loads(path.read_text())


#: How far a resumed run may be from the run left alone. Nearly always they are equal bit
#: for bit; but two runs of the same command, neither interrupted, occasionally differ in
#: the last bits of the CPU kernels' sums (measured: 2 of 136 identical runs on a
#: loaded 2-core machine, epoch loss by 5e-8, validation Dice by up to 4.5e-5, one class's
#: Dice by 1.5e-4). A resume that gets anything wrong (a random state, the schedule, a
#: replayed batch) moves the epoch losses by far more than LOSS_TOLERANCE.
LOSS_TOLERANCE = 1e-6
DICE_TOLERANCE = 2e-4
CLASS_DICE_TOLERANCE = 2e-3


def assert_same_result(mine: dict, reference: dict) -> None:
    assert mine["status"] == "succeeded"
    if mine["history"] == reference["history"] and mine["mean_dice"] == reference["mean_dice"]:
        assert mine["per_class_dice"] == reference["per_class_dice"]
        return  # bit for bit, as nearly always
    assert [h["epoch"] for h in mine["history"]] == [h["epoch"] for h in reference["history"]]
    for got, want in zip(mine["history"], reference["history"], strict=True):
        assert got["lr"] == want["lr"], (got, want)
        assert abs(got["loss"] - want["loss"]) <= LOSS_TOLERANCE, (got, want)
        assert abs(got["val_mean_dice"] - want["val_mean_dice"]) <= DICE_TOLERANCE, (got, want)
    assert abs(mine["mean_dice"] - reference["mean_dice"]) <= DICE_TOLERANCE
    for name, want in reference["per_class_dice"].items():
        assert abs(mine["per_class_dice"][name] - want) <= CLASS_DICE_TOLERANCE, name


def subprocess_env() -> dict[str, str]:
    """The code under test (not an installed copy) and this process's thread count."""
    source = str(Path(harness.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
    threads = str(torch.get_num_threads())
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": threads, "COLUMNS": "200"}


# Records made by hand, for the leaderboard and what reads records.

BENCH = {
    "id": "tiny-abc__phantom-1234",
    "dataset": {"name": "phantom", "fingerprint": "1234" * 16},
    "protocol": {"name": "tiny", "label": "tiny", "hash": "abc", "fields": {"epochs": 2}},
}


def other_benchmark(protocol_hash: str) -> dict:
    """``BENCH`` under another protocol (its hash, hexadecimal): another benchmark, whose id
    names that hash, as a record's id must."""
    return {
        **BENCH,
        "id": f"tiny-{protocol_hash}__phantom-1234",
        "protocol": {**BENCH["protocol"], "hash": protocol_hash},
    }


def _comp(name: str) -> dict:
    return {"name": name, "params": {}, "plugin": "p", "distribution": "harness", "version": "0"}


def _entry(loss: str) -> dict:
    comp = _comp
    return {
        "model": comp("unetpp"),
        "loss": {**comp(loss), "params": {"dice": 0.7} if loss == "combo" else {}},
        "optimizer": comp("adamw"),
        "scheduler": comp("flat"),
        "augmentation": comp("none"),
        "encoder": None,
    }


def make_record(
    loss: str, seed: int, dice: float, status: str = "succeeded", bench: dict = BENCH
) -> Record:
    """A record of an ``unetpp`` entry with ``loss``, every class at ``dice``."""
    return Record(
        status=status,
        seed=seed,
        mean_dice=dice if status == "succeeded" else None,
        per_class_dice={c: dice for c in CLASSES} if status == "succeeded" else {},
        benchmark=bench,
        entry=_entry(loss),
        best={"epoch": 2, "mean_dice": dice},
        cost={
            "parameters": 1e6,
            "train_images_per_s": 10.0,
            "peak_memory_mb": 100,
            "wall_s": 60,
            "device": "cpu",
        },
        started_at=f"2026-01-0{seed + 1}",
    )


def put_record(runs: Path, name: str, record: Record) -> Path:
    """Write ``record`` as ``runs/NAME/record.json``, as a run would."""
    path = runs / name / "record.json"
    write_record(path, record)
    return path


def seeded_runs(root: Path, bench: dict = BENCH, loss: str = "dice", dice: float = 0.8) -> Path:
    """``root/runs`` holding seeds 0 and 1 of the ``loss`` entry on ``bench`` (Dice ``dice``
    and ``dice + 0.01``); the runs folder."""
    runs = root / "runs"
    for seed in (0, 1):
        record = make_record(loss, seed, dice + seed / 100, bench=bench)
        put_record(runs, f"{bench['id']}/{loss}/seed-{seed}", record)
    return runs


# A tuned entry's records with their pictures, for what a page's drill-down reads.

#: Where the tuned records of ``pictured_runs`` say their tuning study and trial ran.
TUNING_STUDY = f"{BENCH['id']}/tuning/study"
TUNING_TRIAL = f"{BENCH['id']}/trial/seed-0"


def tuned_record(record: Record) -> Record:
    """``record`` as a tuned entry's, with every field a page's drill-down reads."""
    record.entry = {**record.entry, "tuned": "1-abc", "hparams": {"lr": 0.01}}
    record.tuning = {
        "budget": "tuned: 1 trial over lr [0.0001, 0.3] log",
        "tuning": {"fold": 1},
        "study": TUNING_STUDY,
        "trials": [
            {
                "number": 0,
                "values": {"lr": 0.01},
                "mean_dice": 0.5,
                "status": "succeeded",
                "device_hours": 0.1,
                "record": TUNING_TRIAL,
            }
        ],
        "chosen": {"trial": 0, "values": {"lr": 0.01}, "mean_dice": 0.5},
        "trial_device_hours": 0.1,
    }
    record.hardware = {"cpu": {"model": "Some CPU", "threads": 2}}
    record.cost = {**record.cost, "inference_warmup": 1, "inference_timed": 3, "gflops": 1.0}
    record.per_image_dice = [[record.mean_dice] * 29, [record.mean_dice] * 29]
    record.val_images = ["a.png", "b.png"]
    return record


def pictured_runs(root: Path) -> tuple[Path, list[Path]]:
    """A runs folder of three good records (one entry tuned, two seeds; one other entry), each
    run with a picture, and a folder beside it, outside, holding pictures a record may name."""
    runs = root / "runs"
    records = [
        (f"{BENCH['id']}/dice/seed-0", tuned_record(make_record("dice", 0, 0.8))),
        (f"{BENCH['id']}/dice/seed-1", tuned_record(make_record("dice", 1, 0.82))),
        (f"{BENCH['id']}/bce/seed-0", make_record("bce", 0, 0.6)),
    ]
    for folder in (TUNING_STUDY, TUNING_TRIAL):
        (runs / folder).mkdir(parents=True, exist_ok=True)
        (runs / folder / "tuning.png").write_bytes(b"png")
    paths = []
    for folder, record in records:
        write_record(runs / folder / "record.json", record)
        (runs / folder / "curves.png").write_bytes(b"png")
        paths.append(runs / folder / "record.json")
    for name in ("outside", "outside/study"):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "tuning.png").write_bytes(b"png")
        (root / name / "curves.png").write_bytes(b"png")
    return runs, paths


# The trainer's observer.


class Recorder:
    """A ``TrainObserver`` that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def run_started(self, description: str, total_steps: int, completed: int) -> None:
        self.calls.append(("run_started", (description, total_steps, completed)))

    def step_done(self, step: int, epoch: int, epochs: int, loss: float) -> None:
        self.calls.append(("step_done", (step, epoch, epochs)))

    def validating(self, epoch: int, epochs: int) -> None:
        self.calls.append(("validating", (epoch, epochs)))

    def validated(self, epoch: int, step: int, model: torch.nn.Module) -> None:
        self.calls.append(("validated", (epoch, step)))

    def epoch_done(self, metrics: dict[str, Any]) -> None:
        self.calls.append(("epoch_done", metrics))

    def message(self, text: str) -> None:
        self.calls.append(("message", text))

    def run_ended(self) -> None:
        self.calls.append(("run_ended", None))

    def named(self, name: str) -> list[Any]:
        return [args for kind, args in self.calls if kind == name]


# A full disk.


@contextlib.contextmanager
def full_tmpfs(folder: Path, size: str = "2m") -> Iterator[Path]:
    """``folder`` mounted as a ``size`` tmpfs and filled to the last page by the file this
    yields (delete it to make room); unmounted at the end. The test is skipped where
    mounting is refused (not root, no tmpfs)."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    done = subprocess.run(mount, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        fill = folder / "fill"
        fill_up(fill)
        yield fill
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def fill_up(path: Path) -> None:
    """Write zeros to ``path`` until its disk is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        block = bytes(4096)
        while True:
            os.write(fd, block)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)


def no_space(monkeypatch: pytest.MonkeyPatch, refuse: Callable[[Path], bool]) -> list[Path]:
    """A fault-injecting disk: each atomic write (``harness.atomic``) of a file for which
    ``refuse(path)`` holds fails at its flush with ENOSPC, as a full disk fails it; every
    other write goes on. Returns the list of the files refused, filled as it happens."""
    real = os.fsync
    refused: list[Path] = []

    def fsync(fd: int) -> None:
        name = Path(os.readlink(f"/proc/self/fd/{fd}"))
        stem, tmp, _ = name.name.partition(".tmp-")
        target = name.with_name(stem[1:]) if tmp and stem.startswith(".") else None
        if target is not None and refuse(target):
            refused.append(target)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return refused


# Inputs and pages: what a command read is unchanged, and a page stays inside its folders.


def hashes(*roots: Path) -> dict[Path, str]:
    """Every file under ``roots`` (a file itself when one is given) by its SHA-256: compared
    before and after a command, the proof that it changed none of its inputs."""
    import hashlib

    found = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            found[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


#: Opens every row's drill-down of the page, then returns every href and src the page holds,
#: each resolved against the page (so the drill-downs' links and pictures are counted too).
_LINKS_SCRIPT = """
const urls = new Set();
const grab = () => document.querySelectorAll("[href], [src]").forEach((e) => {
  for (const name of ["href", "src"]) {
    const value = e.getAttribute(name);
    if (value !== null) urls.add(new URL(value, document.baseURI).href);
  }
});
grab();
const rows = document.querySelectorAll("#board tbody tr").length;
for (let i = 1; i <= rows; i++) {
  location.hash = "row=" + i;
  window.dispatchEvent(new HashChangeEvent("hashchange"));
  grab();
}
return Array.from(urls);
"""


def page_reach(browser: Any, page: Path) -> tuple[list[str], list[str]]:
    """Open ``page`` in the headless browser and every row's drill-down: (every URL it
    requested, from the DevTools performance log; every href and src it holds, resolved)."""
    import time

    browser.get_log("performance")  # what came before
    browser.get(page.resolve().as_uri())
    links = browser.execute_script(_LINKS_SCRIPT)
    time.sleep(0.1)  # the drill-downs' pictures, requested as they are drawn
    requested = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        # The page's own requests (the browser's new-tab page, chrome://, is not the page's).
        if "request" in params and str(params.get("documentURL", "")).startswith("file:"):
            requested.append(params["request"]["url"])
    assert page.resolve().as_uri() in requested, requested  # the log saw the page itself
    return requested, links


def open_page(browser: Any, page: Path, fragment: str = "") -> None:
    """Open ``page`` in the headless browser from ``file://`` (``fragment``: ``#sort=...``)."""
    browser.get(page.resolve().as_uri() + fragment)


def shown_rows(browser: Any) -> list[str]:
    """The open page's rows as the browser shows them, in their order: each one's Entry
    column (or first column); the rows a filter hides are not shown."""
    script = """
        const head = [...document.querySelectorAll('#board thead th')].map(t => t.textContent);
        const col = Math.max(0, head.indexOf('Entry'));
        return [...document.querySelectorAll('#board tbody tr')]
            .filter(tr => !tr.hidden && tr.offsetParent !== null)
            .map(tr => tr.cells[col].textContent);
    """
    return browser.execute_script(script)


def outside(urls: list[str], *folders: Path) -> list[str]:
    """The URLs that leave ``folders``: anything but a ``data:`` URL, a fragment of the page
    or a ``file:`` URL of a file inside one of them."""
    from urllib.parse import unquote, urlsplit

    inside = [Path(f).resolve() for f in folders]
    out = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme == "data":
            continue
        if parts.scheme != "file":
            out.append(url)
            continue
        path = Path(unquote(parts.path)).resolve()
        if not any(path.is_relative_to(folder) for folder in inside):
            out.append(url)
    return out


# The command line's consoles and clocks.


def string_console(terminal: bool = False) -> tuple[Console, io.StringIO]:
    """A console 200 columns wide writing into a string (a terminal's, or a log file's)."""
    out = io.StringIO()
    return Console(file=out, width=200, force_terminal=terminal), out


class FakeClock:
    """A clock the test moves by hand (``clock.now += 30``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# Runs with kept predictions, made by hand (``harness select``).

#: What a crafted member predicts: from an image's ``(29, H, W)`` bool truth, its name and
#: fold, float probabilities ``(29, H, W)``; one function per kept test-time augmentation.
Predictor = Callable[[Any, str, int], Any]


def selection_data(root: Path, labelled_test: bool = False) -> Path:
    """A 5-ID, 64 px phantom (``labelled_test``: one of its training IDs also copied, with its
    labels, into ``test/``, as a held-out set with labels)."""
    import shutil

    from harness.data.phantom import synthesize

    data = synthesize(root / "data", ids=5, size=64, test_ids=0 if labelled_test else 1)
    if labelled_test:
        for part in ("DCM", "outputs_json"):
            shutil.copytree(data / "train" / part / "ID004", data / "test" / part / "ID099")
    return data


def selection_benchmark(data: Path, folds: tuple[int, ...] | None = (0, 1)) -> dict:
    """The benchmark dict a cross-validated tiny run on ``data`` records (``folds`` None: one
    that is not cross-validated, on the protocol's fold)."""
    from harness import protocol as protocols
    from harness.data.sources import describe

    proto = protocols.load("tiny")
    info = describe(data)
    fields = {**proto.hashed_fields(), **({"cv_folds": list(folds)} if folds else {})}
    return {
        "id": f"tiny-{proto.hash}__{info.name}-{info.fingerprint[:8]}",
        "dataset": {"name": info.name, "fingerprint": info.fingerprint},
        "protocol": {"name": "tiny", "label": "tiny", "hash": proto.hash, "fields": fields},
    }


def selection_runs(
    runs: Path,
    data: Path,
    members: dict[str, dict[str, Predictor]],
    *,
    folds: tuple[int, ...] = (0, 1),
    bench: dict | None = None,
    model: str = "small-cnn",
    keep: bool = True,
) -> str:
    """``runs/<benchmark>/<member>/fold-F-seed-0``: a succeeded record for each member and
    fold, its validation images' kept predictions (each test-time augmentation's, from its
    predictor) and Dice scored from them; the benchmark's id. A benchmark that is not
    cross-validated (no ``cv_folds``) gets runs of no fold (``seed-0``), on ``folds[0]``."""
    import numpy as np

    from harness.data.annotations import rasterize, read_annotation
    from harness.data.layout import label_path, list_images, split
    from harness.metric.dice import dice_scores
    from harness.results.predictions import cut, quantize, write_predictions

    bench = bench or selection_benchmark(data, folds)
    cross = bool(bench["protocol"]["fields"].get("cv_folds"))
    for name, by_tta in members.items():
        for fold in folds:
            images = split(sorted(list_images(data, "train")), 5, fold)[1]
            truths = [rasterize(read_annotation(label_path(p))).astype(bool) for p in images]
            kept = [
                (p.name, {t: f(truth, p.name, fold) for t, f in by_tta.items()})
                for p, truth in zip(images, truths, strict=True)
            ]
            folder = runs / bench["id"] / name / (f"fold-{fold}-seed-0" if cross else "seed-0")
            summary = write_predictions(folder, kept, 0.5) if keep else None
            scores = [
                dice_scores(
                    torch.from_numpy(quantize(probs["none"], 0.5) > cut(0.5)),
                    torch.from_numpy(truth),
                ).tolist()
                for (_, probs), truth in zip(kept, truths, strict=True)
            ]
            per_class = np.mean(scores, axis=0)
            entry = {**_entry("dice"), "model": _comp(model), "encoder": name}
            record = Record(
                status="succeeded",
                seed=0,
                mean_dice=float(per_class.mean()),
                per_class_dice={c: float(v) for c, v in zip(CLASSES, per_class, strict=True)},
                benchmark=bench,
                entry=entry,
                cost={"wall_s": 1.0, "device": "cpu", "inference_images_per_s": 10.0},
                per_image_dice=scores,
                val_images=[p.name for p in images],
                fold=fold if cross else None,
                predictions=summary,
            )
            write_record(folder / "record.json", record)
    return str(bench["id"])
