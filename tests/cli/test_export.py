"""``harness export`` (``harness.cli.export``): what was exported and how it checked, in
lines (the input and output a user feeds and reads, the dynamic axes, the runner and its
largest difference from torch, the tracer's warning when there is one). The export is made
up here; real ONNX and TorchScript exports: tests/inference/test_export.py; an output over an
input refused: tests/cli/test_inputs.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.inference import export
from harness.inference.export import TOLERANCE, Exported


@pytest.mark.parametrize(
    "fmt, warning, runner",
    [
        ("onnx", None, "onnxruntime"),
        ("torchscript", "a branch on x.mean()", "the TorchScript module"),
    ],
)
def test_the_lines_say_what_was_exported_and_how_it_checked(
    cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    warning: str | None,
    runner: str,
) -> None:
    out = tmp_path / f"model.{fmt}"
    handed: list[tuple] = []

    def export_run(run_dir: Path, fmt: str, out_path: Path, **kwargs: object) -> Exported:
        handed.append((run_dir, fmt, out_path, kwargs))
        return Exported(
            out_path, fmt, "unet", (1, 64, 64), ("batch", "height", "width"),
            Path("data/img.png"), 3.2e-6, warning=warning,
        )  # fmt: skip

    monkeypatch.setattr(export, "export_run", export_run)
    result = cli("export", tmp_path / "run", "--format", fmt, "--out", out, "--plugin", "p.py")
    assert result.code == 0, result.err
    assert handed == [(tmp_path / "run", fmt, out, {"data": None, "plugins": ("p.py",)})]
    lines = result.out.splitlines()
    assert lines[:4] == [
        f"exported unet as {fmt} to {out}",
        "  input  image: float32 (N, 1, 64, 64) in [0, 1]; dynamic: batch, height, width",
        "  output logits: float32 (N, 29, H, W), one channel per class (sigmoid > 0.5: the mask)",
        f"  checked on img.png and its mirror: {runner}'s logits within 3.20e-06 of torch's "
        f"(tolerance {TOLERANCE:g})",
    ]
    said = [f"  the tracer warned (check the model on inputs of your own): {warning}"]
    assert lines[4:] == (said if warning else [])
