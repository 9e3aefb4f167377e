"""``harness evaluate``: score a submission CSV as the competition does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.root import line, out, text
from harness.cli.tables import per_class_table


def evaluate(
    data: Annotated[Path, typer.Option(help="Dataset folder with labels")],
    submission: Annotated[Path, typer.Option(help="Submission CSV (image_name,class,rle)")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write mean_dice and per_class_dice here")
    ] = None,
) -> None:
    """Score a submission CSV exactly as the competition does."""
    from harness.atomic import atomic_write_text
    from harness.metric.evaluate import evaluate_submission
    from harness.paths import check_output

    if json_out is not None:  # before any work: never over the submission or the dataset
        check_output(json_out, "--json", [submission], [(data, "the dataset folder")])
    result = evaluate_submission(data, submission)
    out.print(per_class_table(result.per_class_dice, text(f"{submission}: per-class Dice")))
    line(f"mean Dice {result.mean_dice:.4f} over {len(result.images)} images")
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(result.to_json(), indent=2) + "\n")
