"""``harness predict``: a submission CSV from one run or an ensemble of runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from harness.cli import bars
from harness.cli.root import err, line, out, text


def predict(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN_DIR",
            help="A run folder (runs/<benchmark>/<entry>/seed-N); several runs of one "
            "benchmark predict as an ensemble (sigmoid probabilities averaged)",
        ),
    ],
    data: Annotated[Path, typer.Option(help="Dataset folder")],
    out_path: Annotated[Path, typer.Option("--out", help="Submission CSV to write")] = Path(
        "submission.csv"
    ),
    split: Annotated[
        str, typer.Option(help="test (test/DCM) or val (the validation fold)")
    ] = "test",
    tta: Annotated[
        str,
        typer.Option(
            help="A test-time augmentation (`harness list tta`): none, hflip (logits averaged "
            "with the mirror's; flip is its older name), multiscale, or a plugin's"
        ),
    ] = "none",
    postprocessor: Annotated[
        str,
        typer.Option(
            help="A post-processor of the masks (`harness list postprocessors`): none, "
            "largest-component, fill-holes, or a plugin's"
        ),
    ] = "none",
    postprocess_classes: Annotated[
        str | None,
        typer.Option(
            help="The classes the post-processor is for, comma-separated (default: every "
            "class; `harness select` prints the ones it chose)"
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    batch_size: Annotated[int | None, typer.Option(help="Images per forward pass")] = None,
    num_workers: Annotated[int, typer.Option(help="Data-loader workers")] = 0,
    plugin: Annotated[list[str] | None, typer.Option(help="Plugin the model came from")] = None,
) -> None:
    """Write the competition's submission CSV from a finished run's final weights, or from
    an ensemble of runs; with --split val and several runs, each one's Dice and the ensemble's."""
    from harness.inference.predict import PredictOptions, predict_ensemble
    from harness.paths import check_output

    read = [(run, "the run folder") for run in run_dirs] + [(data, "the dataset folder")]
    check_output(out_path, "--out", folders=read)  # before any work: never over an input
    options = PredictOptions(
        split=split,
        tta=tta,
        postprocessor=postprocessor,
        postprocess_classes=_classes(postprocess_classes),
        device=device,
        batch_size=batch_size,
        plugins=tuple(plugin or ()),
        num_workers=num_workers,
        score=len(run_dirs) > 1,
    )
    with bars.bar("Predicting", err) as progress:
        prediction = predict_ensemble(run_dirs, data, out_path, options, progress=progress)
    if prediction.ensemble_dice is not None:
        out.print(_ensemble_table(prediction))
    line(f"wrote {prediction.path}")


def _classes(text: str | None) -> tuple[str, ...] | None:
    """``finger-1,Radius``: the classes named, each once, in order (None: every class)."""
    if text is None:
        return None
    return tuple(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))


def _ensemble_table(prediction: Any) -> Table:
    """Validation Dice of each member and of the ensemble (``inference.predict.Prediction``)."""
    table = Table(title=f"Validation mean Dice: ensemble of {len(prediction.runs)} runs")
    table.add_column("Run")
    table.add_column("Mean Dice", justify="right")
    table.add_column("vs ensemble", justify="right")
    for run, dice in zip(prediction.runs, prediction.member_dice, strict=True):
        table.add_row(text(run), f"{dice:.4f}", f"{dice - prediction.ensemble_dice:+.4f}")
    table.add_row("ensemble", f"{prediction.ensemble_dice:.4f}", "")
    return table
