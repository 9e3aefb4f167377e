"""``harness data``: make, check and measure datasets (``synth``, ``check``, ``stats``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli import bars
from harness.cli.root import err, line, out
from harness.cli.tables import stats_table

app = typer.Typer(no_args_is_help=True, help="Make and check datasets.")


@app.command("synth")
def data_synth(
    out_dir: Annotated[
        Path, typer.Argument(metavar="OUT", help="New folder to write the dataset into")
    ],
    ids: Annotated[int, typer.Option(help="Number of ID folders (two hands each) in train/")] = 20,
    size: Annotated[int, typer.Option(help="Image side in pixels")] = 256,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes")] = 0,
) -> None:
    """Write the synthetic hand X-ray phantom in the competition layout."""
    from harness.data.phantom import synthesize

    with bars.bar("Drawing hands", err) as progress:
        synthesize(
            out_dir,
            ids=ids,
            size=size,
            seed=seed,
            progress=progress,
        )
    line(f"wrote {out_dir}")


@app.command("check")
def data_check(
    path: Annotated[Path, typer.Argument(help="Dataset folder")],
) -> None:
    """Validate a dataset: every image has its labels, every label file is valid."""
    from harness.data.checks import check_dataset

    with bars.bar("Checking images", err) as progress:
        problems, count = check_dataset(path, progress=progress)
    for problem in problems:
        line(f"harness: error: {problem}", err)
    if problems:
        raise typer.Exit(2)
    line(f"{path}: {count} labelled images, all valid")


@app.command("stats")
def data_stats(
    path: Annotated[
        Path | None, typer.Argument(help="Dataset folder (default: the built-in phantom)")
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for stats.json and the four plots")
    ] = Path("stats"),
) -> None:
    """Measure a dataset: class areas, overlaps, wrist angle, contrast, hands; JSON and plots."""
    from harness.data.stats import compute_stats, write_report
    from harness.paths import check_folder

    check_folder(out_dir, "--out")  # before measuring: a file there is one line, not a traceback
    if path is None:
        from harness import protocol
        from harness.data.sources import synthetic_dataset

        p = protocol.load("synthetic")
        path = synthetic_dataset(p.synth_ids, p.synth_size, p.synth_seed)
    with bars.bar("Measuring", err) as progress:
        stats = compute_stats(path, progress=progress)
    out.print(stats_table(stats))
    for written in write_report(stats, out_dir):
        line(f"wrote {written}")
