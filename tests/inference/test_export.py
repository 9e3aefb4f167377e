"""``harness export`` (``harness.inference.export``): a finished run's model as ONNX or TorchScript,
checked against torch on a validation image; the exported model runs on its own at another
batch and size; a model the exporter refuses is one line."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from harness.inference.export import TOLERANCE
from harness.inference.predict import load_run
from tests.helpers import PLUGIN

#: A model whose output depends on a value of its input: torch.export cannot follow it.
BRANCHY = (
    PLUGIN.replace("def small_cnn(", "def _unused(").replace(
        '{"small-cnn": small_cnn}', '{"branchy": branchy}'
    )
    + """

class Branchy(Small):
    def forward(self, x):
        if x.mean() > 0.5:
            return self.body(x)
        return -self.body(x)


def branchy(*, num_classes, in_channels, encoder=None, delay=0.0):
    return Branchy(in_channels, num_classes, float(delay))
"""
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished ``tiny`` run of the small test model (2 epochs): its folder and plugin."""
    from harness.engine.events import NullObserver
    from harness.runs.dispatch import dispatch
    from harness.runs.planning import plan
    from harness.runs.requests import RunRequest

    home = tmp_path_factory.mktemp("export")
    plugin = home / "small_cnn.py"
    plugin.write_text(PLUGIN)
    request = RunRequest.from_options(
        model="small-cnn", loss="dice", plugins=(str(plugin),), protocol="tiny",
        sets=("epochs=2",), device="cpu", runs_dir=home / "runs",
        leaderboards_dir=home / "boards",
    )  # fmt: skip
    dispatch([plan(request)], NullObserver())
    (record,) = (home / "runs").rglob("record.json")
    return record.parent, plugin


def _other_input(resolution: int) -> torch.Tensor:
    """Three images at another size than the export's example (batch and size dynamic)."""
    return torch.rand(
        3, 1, resolution + 32, resolution + 32, generator=torch.Generator().manual_seed(0)
    )


def test_onnx_export_is_checked_and_runs_in_onnxruntime(cli, trained, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    run_dir, plugin = trained
    out = tmp_path / "model.onnx"
    result = cli("export", run_dir, "--format", "onnx", "--out", out, "--plugin", plugin)
    assert result.code == 0, result.err
    assert f"exported small-cnn as onnx to {out}" in result.out
    assert "dynamic: batch, height, width" in result.out
    assert (
        "onnxruntime's logits within" in result.out and f"(tolerance {TOLERANCE:g})" in result.out
    )

    loaded = load_run(run_dir, plugins=[str(plugin)])
    x = _other_input(loaded.protocol.resolution)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"image": x.numpy()})
    with torch.no_grad():
        want = loaded.model.float().to(memory_format=torch.contiguous_format)(x)
    assert logits.shape == tuple(want.shape) == (3, 29, *x.shape[-2:])
    assert float((torch.from_numpy(logits) - want).abs().max()) <= TOLERANCE


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_export_is_checked_and_loads_without_the_harness(
    cli, trained, tmp_path: Path
) -> None:
    run_dir, plugin = trained
    out = tmp_path / "model.pt"
    result = cli("export", run_dir, "--format", "torchscript", "--out", out, "--plugin", plugin)
    assert result.code == 0, result.err
    assert "the TorchScript module's logits within" in result.out
    loaded = load_run(run_dir, plugins=[str(plugin)])
    x = _other_input(loaded.protocol.resolution)
    module = torch.jit.load(str(out))
    with torch.no_grad():
        got, want = module(x), loaded.model.float().to(memory_format=torch.contiguous_format)(x)
    assert float((got - want).abs().max()) <= TOLERANCE


def test_a_model_the_exporter_refuses_is_one_line(cli, trained, tmp_path: Path) -> None:
    """The trained run, its record naming a model with the same weights whose output depends
    on its input's values."""
    pytest.importorskip("onnxscript")
    run_dir, _ = trained
    copy = tmp_path / "runs" / "bench" / "entry" / "seed-0"
    shutil.copytree(run_dir, copy)
    record = json.loads((copy / "record.json").read_text())
    record["entry"]["model"]["name"] = "branchy"
    (copy / "record.json").write_text(json.dumps(record))
    plugin = tmp_path / "branchy.py"
    plugin.write_text(BRANCHY)
    out = tmp_path / "model.onnx"
    result = cli("export", copy, "--format", "onnx", "--out", out, "--plugin", plugin)
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert line.startswith("harness: error: model 'branchy' cannot be exported to ONNX: ")
    assert "data-dependent" in line
    assert not out.exists()


def test_bad_format_and_a_missing_exporter_are_one_line(
    cli, trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, plugin = trained
    out = tmp_path / "model.onnx"
    result = cli("export", run_dir, "--format", "tflite", "--out", out, "--plugin", plugin)
    assert result.code == 2
    assert (
        result.err.strip() == "harness: error: --format 'tflite': choose one of onnx, torchscript"
    )
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # not installed
    result = cli("export", run_dir, "--format", "onnx", "--out", out, "--plugin", plugin)
    assert result.code == 2
    assert result.err.strip() == (
        "harness: error: --format onnx: onnxruntime is not installed; install it with "
        "`pip install onnx onnxscript onnxruntime` "
        "(or `pip install 'segmentation-harness[export]'`)"
    )
    assert not out.exists()
