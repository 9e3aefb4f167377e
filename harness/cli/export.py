"""``harness export``: a finished run's model as ONNX or TorchScript, checked against torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.root import line


def export(
    run_dir: Annotated[
        Path,
        typer.Argument(
            metavar="RUN_DIR", help="A finished run's folder (runs/<benchmark>/<entry>/seed-N)"
        ),
    ],
    fmt: Annotated[str, typer.Option("--format", help="onnx or torchscript")],
    out_path: Annotated[Path, typer.Option("--out", help="The file to write")],
    data: Annotated[
        Path | None,
        typer.Option(
            help="The run's dataset folder, for the validation image the export is checked on "
            "(default: the built-in phantom)"
        ),
    ] = None,
    plugin: Annotated[list[str] | None, typer.Option(help="Plugin the model came from")] = None,
) -> None:
    """Export a finished run's final weights in its model for the protocol's input (dynamic
    batch; dynamic height and width where the model allows), then check the exported model's
    logits against torch's on a validation image."""
    from harness.inference.export import export_run
    from harness.paths import check_output

    read = [(run_dir, "the run folder")] + ([(data, "the dataset folder")] if data else [])
    check_output(out_path, "--out", folders=read)  # before any work: never over an input
    exported = export_run(run_dir, fmt, out_path, data=data, plugins=tuple(plugin or ()))
    for said in _lines(exported):
        line(said)


def _lines(exported: Any) -> list[str]:
    """What was exported and how it checked (``harness.inference.export.Exported``)."""
    channels, height, width = exported.input_shape
    runner = "onnxruntime" if exported.format == "onnx" else "the TorchScript module"
    caveat = []
    if exported.warning:
        caveat = [
            f"  the tracer warned (check the model on inputs of your own): {exported.warning}"
        ]
    return [
        f"exported {exported.model_name} as {exported.format} to {exported.path}",
        f"  input  image: float32 (N, {channels}, {height}, {width}) in [0, 1]; "
        f"dynamic: {', '.join(exported.dynamic)}",
        "  output logits: float32 (N, 29, H, W), one channel per class (sigmoid > 0.5: the mask)",
        f"  checked on {exported.image.name} and its mirror: {runner}'s logits within "
        f"{exported.max_difference:.2e} of torch's (tolerance {exported.tolerance:g})",
        *caveat,
    ]
