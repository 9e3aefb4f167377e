"""Shared fixtures: an isolated cache folder, a command-line runner, one local Ray instance,
the trainer's setting, torch on one thread. Shared helpers that are not fixtures are in
``tests/helpers.py``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The helpers' asserts (``assert_same_result``) report their values as a test module's do.
pytest.register_assert_rewrite("tests.helpers")


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets a session-wide cache outside the user's home (the phantom is built once)."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one thread: small tensors gain nothing from more, and a busy CPU stalls them."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """Run ``harness ARGS...`` in-process through the real entry point; return code and output."""
    from harness.cli import main

    def invoke(*args: str | Path) -> Result:
        monkeypatch.setattr(sys, "argv", ["harness", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture(scope="session")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One local Ray instance (2 CPUs) for this session; its workers share the test cache."""
    ray = pytest.importorskip("ray")

    cache = str(tmp_path_factory.getbasetemp() / "cache")
    before = os.environ.get("HARNESS_CACHE_DIR")
    os.environ["HARNESS_CACHE_DIR"] = cache  # what the workers inherit
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
    )
    yield
    ray.shutdown()
    if before is None:
        os.environ.pop("HARNESS_CACHE_DIR", None)
    else:
        os.environ["HARNESS_CACHE_DIR"] = before


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What ``harness.engine.trainer.train`` needs for the small test model on ``tiny``."""
    import torch

    from harness import protocol as protocols
    from harness.components.entry import Entry, parse_component
    from harness.components.registry import Registry
    from harness.data.layout import list_images, split
    from harness.data.sources import synthetic_dataset
    from harness.engine.trainer import Execution, Recipe, RunSpec
    from tests.helpers import PLUGIN

    plugin = tmp_path_factory.mktemp("plugin") / "small_cnn.py"
    plugin.write_text(PLUGIN)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        proto = protocols.load("tiny").derive(["epochs=3", "val_interval=2"])
        root = synthetic_dataset(proto.synth_ids, proto.synth_size, proto.synth_seed)
    train_images, val_images = split(list_images(root, "train"), proto.folds, proto.fold)
    components = {
        "model": "small-cnn",
        "loss": "dice",
        "optimizer": proto.optimizer,
        "scheduler": proto.scheduler,
        "augmentation": proto.augmentation,
    }
    entry = Entry(**{k: parse_component(v, k) for k, v in components.items()})
    recipe = Recipe(proto, entry, Registry.load([str(plugin)]))
    return {
        "run": RunSpec(recipe, 0, train_images, val_images),
        "execution": Execution(torch.device("cpu")),
    }
