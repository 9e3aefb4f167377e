"""The command line: each command parses, calls one library function, renders.

Errors a user can fix print one line (``harness: error: ...``) and exit 2; a run that
failed exits 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from harness.cli import bars, options
from harness.cli.progress import TrainingProgress
from harness.cli.tables import per_class_table, stats_table, trials_table
from harness.errors import HarnessError, RunFailed
from harness.runs.requests import RunRequest

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark segmentation plugins under identical settings into leaderboards.",
)
data_app = typer.Typer(no_args_is_help=True, help="Make and check datasets.")
app.add_typer(data_app, name="data")

out = Console()
err = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    _state["debug"] = debug


@app.command()
@options.request_options()
def run(request: RunRequest, nproc: options.Nproc = 1) -> None:
    """Train an entry on a benchmark, print per-class Dice, and update its leaderboard."""
    from harness.engine import distributed
    from harness.runs.execution import execute, plan

    start_ranks = _ranks(nproc) and not (request.jobs or request.cluster)
    _check_jobs(request, nproc)
    if start_ranks:  # every input checked and the dataset prepared once, here
        with bars.bar("Preparing the dataset", err) as progress:
            resolved = plan(request, progress=progress)
        _start_ranks(nproc, resolved.device)
    with bars.bar("Preparing the dataset", err) as progress:
        resolved = plan(request, progress=progress)
    bench = resolved.benchmark
    dataset = bench.dataset
    err.print(
        f"[bold]Benchmark[/bold] {bench.id}\n"
        f"  dataset  {dataset.name} ({dataset.root}), fingerprint {dataset.fingerprint[:16]}\n"
        f"  protocol {bench.protocol.label}, hash {bench.protocol.hash}\n"
        f"  entry    {resolved.entry.label}\n"
        f"  seeds    {', '.join(map(str, resolved.seeds))} on {resolved.device}",
        soft_wrap=True,
        highlight=False,
    )
    if request.dry_run:
        return _dry_run([resolved])
    try:
        if request.jobs or request.cluster:
            outcomes = _run_jobs([resolved], nproc)
        else:
            outcomes = execute(resolved, TrainingProgress(err))
    finally:
        distributed.shutdown()
    if not resolved.world.is_main:
        return  # the main rank reports (and only it has written the record and the table)
    for path, record in outcomes:
        out.print(
            per_class_table(
                record.per_class_dice, f"Seed {record.seed}: per-class Dice (final epoch)"
            )
        )
        out.print(
            f"seed {record.seed}: mean Dice [bold]{record.mean_dice:.4f}[/bold] "
            f"(best epoch {record.best['epoch']}: {record.best['mean_dice']:.4f}, "
            f"not used for ranking), {record.cost['wall_s'] / 60:.1f} min; record {path}",
            soft_wrap=True,
        )
    from harness.results.leaderboard import leaderboard_path

    board = resolved.table or leaderboard_path(resolved.leaderboards_dir, bench.id)
    row = _row_of(board, resolved.entry.label)
    out.print(f"Leaderboard {board}:")
    out.print(row, markup=False, highlight=False, soft_wrap=True)


@app.command()
@options.request_options(
    leave_out={"tta"},
    overrides={
        "model": options.Override("unetpp", "Model plugin (fixed unless varied)"),
        "loss": options.Override("dice", "Loss plugin (fixed unless varied)"),
        "resume": options.Override(False, "Keep finished runs; continue interrupted ones"),
    },
)
def sweep(
    vary: Annotated[str, typer.Option(help="AXIS=v1,v2,... e.g. loss=bce,dice,combo")],
    request: RunRequest,
    nproc: options.Nproc = 1,
) -> None:
    """Vary one axis with everything else fixed; write an ablation table beside the leaderboard."""
    import dataclasses

    from harness.engine import distributed
    from harness.runs.execution import plan
    from harness.runs.sweep import parse_vary
    from harness.runs.sweep import sweep as run_sweep

    start_ranks = _ranks(nproc) and not (request.jobs or request.cluster)
    _check_jobs(request, nproc)
    axis = parse_vary(vary)
    base = request
    # Every value checked, and the dataset prepared, under the bar before anything trains.
    with bars.bar("Preparing the dataset", err) as progress:
        plans = [plan(dataclasses.replace(base, **{axis.name: v}), progress) for v in axis.values]
    if request.dry_run:
        return _dry_run(plans)
    if start_ranks:
        _start_ranks(nproc, plans[0].device)
    try:
        if request.jobs or request.cluster:
            with bars.bar("Runs", err) as runs_progress:
                path, plans = run_sweep(
                    base, axis, TrainingProgress(err), jobs=runs_progress, nproc=nproc
                )
        else:
            path, plans = run_sweep(base, axis, TrainingProgress(err))
    finally:
        distributed.shutdown()
    if not plans[0].world.is_main or path is None:
        return
    out.print(path.read_text(encoding="utf-8"), markup=False, highlight=False)
    out.print(f"wrote {path}", soft_wrap=True)


@app.command()
@options.request_options(
    leave_out={"tuned", "hparams"},
    overrides={
        "model": options.Override("unetpp", "Model plugin (fixed unless varied)"),
        "loss": options.Override("dice", "Loss plugin (fixed unless varied)"),
    },
)
def tune(
    request: RunRequest,
    trials: Annotated[
        int | None,
        typer.Option(help="Trials per entry (default: tuning.trials in the protocol)"),
    ] = None,
    vary: Annotated[
        str | None,
        typer.Option(help="Tune each of AXIS=v1,v2,... and write a tuned ablation table"),
    ] = None,
) -> None:
    """Tune the entry's lr and weight decay with the protocol's equal budget (trials on a
    tuning fold, never on the protocol's), then run the chosen values on its seeds."""
    if vary is not None:
        return _tune_sweep(request, trials, vary)
    from harness.results.leaderboard import leaderboard_path
    from harness.runs.execution import plan
    from harness.runs.tune import tune as run_tune
    from harness.runs.tune import tune_dry_run

    _check_jobs(request, 1)
    with bars.bar("Preparing the dataset", err) as progress:
        plan(request, progress)  # every input checked, the dataset ready, before any trial
    if request.dry_run:
        for line in tune_dry_run(request, trials):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    if request.jobs or request.cluster:
        with bars.bar("Runs", err) as runs_progress:
            outcome = run_tune(request, TrainingProgress(err), trials=trials, jobs=runs_progress)
    else:
        outcome = run_tune(request, TrainingProgress(err), trials=trials)
    out.print(trials_table(outcome))
    for path, record in outcome.final.outcomes:
        out.print(
            f"seed {record.seed}: mean Dice [bold]{record.mean_dice:.4f}[/bold] on fold "
            f"{outcome.final.benchmark.protocol.fold}; record {path}",
            soft_wrap=True,
        )
    out.print(f"tuning picture: {outcome.picture}", soft_wrap=True)
    board = outcome.final.table or leaderboard_path(
        outcome.final.leaderboards_dir, outcome.final.benchmark.id
    )
    out.print(f"Leaderboard {board}:")
    out.print(
        _row_of(board, outcome.final.entry.label), markup=False, highlight=False, soft_wrap=True
    )


def _tune_sweep(request: RunRequest, trials: int | None, vary: str) -> None:
    """``harness tune --vary``: each value tuned with the same budget; the tuned ablation table."""
    import dataclasses

    from harness.runs.execution import plan
    from harness.runs.sweep import parse_vary
    from harness.runs.tune import tune_dry_run, tune_sweep

    _check_jobs(request, 1)
    axis = parse_vary(vary)
    with bars.bar("Preparing the dataset", err) as progress:
        for value in axis.values:  # every value checked before any trial
            plan(dataclasses.replace(request, **{axis.name: value}), progress)
    if request.dry_run:  # each value's budget, study and estimate; nothing trains
        for value in axis.values:
            for line in tune_dry_run(dataclasses.replace(request, **{axis.name: value}), trials):
                out.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    if request.jobs or request.cluster:
        with bars.bar("Runs", err) as runs_progress:
            path, _ = tune_sweep(
                request, axis, TrainingProgress(err), trials=trials, jobs=runs_progress
            )
    else:
        path, _ = tune_sweep(request, axis, TrainingProgress(err), trials=trials)
    if path is None:
        return
    out.print(path.read_text(encoding="utf-8"), markup=False, highlight=False)
    out.print(f"wrote {path}", soft_wrap=True)


def _check_jobs(request: RunRequest, nproc: int) -> None:
    """``--jobs``/``--cluster`` are checked before any work."""
    if request.jobs is not None and request.jobs < 1:
        raise HarnessError(f"--jobs {request.jobs}: give a positive number of runs at once")


def _dry_run(plans: list[Any]) -> None:
    """``--dry-run``: the runs that would train, those skipped, the estimate; nothing trains."""
    from harness.runs.jobs import schedule

    for line in schedule(plans).lines():
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def _run_jobs(plans: list[Any], nproc: int = 1) -> list[Any]:
    """``--jobs``/``--cluster``: the runs as Ray tasks (each over ``nproc`` processes), under a
    bar of runs done."""
    from harness.runs.jobs import run_jobs

    with bars.bar("Runs", err) as progress:
        return run_jobs(plans, TrainingProgress(err), progress, nproc)


def _ranks(nproc: int) -> bool:
    """Check ``--nproc``; True when this process must start the ranks itself.

    In a rank other than 0 of a data-parallel run, this process's consoles go quiet: the
    main rank is the one voice (errors still show, marked with their rank: ``_say``).
    """
    from harness.engine import distributed

    if nproc < 1:
        raise HarnessError(f"--nproc {nproc}: give a positive number of processes")
    if os.environ.get("RANK", "0") != "0":
        err.quiet = out.quiet = True
    return nproc > 1 and not distributed.launched()


def _start_ranks(nproc: int, device: Any) -> NoReturn:
    """Run N copies of this command under torch's launcher (each finds its rank there); exit
    with their code. The caller has checked the input, so a bad option fails once, here."""
    import torch

    from harness.engine import distributed

    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise HarnessError(
            f"--nproc {nproc}: this machine has {torch.cuda.device_count()} CUDA device(s); "
            "use at most that many processes (one per GPU)"
        )
    raise typer.Exit(distributed.launch(nproc, _without_nproc(sys.argv[1:])))


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line minus ``--nproc N`` / ``--nproc=N``: what each launched rank runs."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def _row_of(board: Path, label: str) -> str:
    lines = board.read_text(encoding="utf-8").splitlines()
    header = next(line for line in lines if line.startswith("| # |"))
    row = next((line for line in lines if line.startswith("| ") and f"| {label} |" in line), "")
    return f"{header}\n{row}"


LIST_KINDS = ("models", "losses", "optimizers", "schedulers", "augmentations", "protocols")


@app.command("list")
def list_(
    kind: Annotated[str | None, typer.Argument(help=f"One of: {', '.join(LIST_KINDS)}")] = None,
    plugin: Annotated[
        list[str] | None, typer.Option(help="Extra plugin module or .py file")
    ] = None,
) -> None:
    """Show every component with the plugin and distribution that provides it."""
    from harness import protocol as protocols
    from harness.components.registry import KINDS, Registry

    if kind is not None and kind not in LIST_KINDS:
        raise HarnessError(f"harness list {kind!r}: choose one of {', '.join(LIST_KINDS)}")
    if kind in (None, "protocols"):
        table = Table(title="protocols")
        for col in ("name", "hash", "description"):
            table.add_column(col)
        for p in protocols.builtins():
            table.add_row(p.name, p.hash, p.description)
        out.print(table)
    if kind == "protocols":
        return
    registry = Registry.load(plugin or ())
    for k in [kind] if kind else KINDS:
        table = Table(title=k)
        for col in ("name", "plugin", "distribution"):
            table.add_column(col)
        for component in registry.components(k).values():
            dist = (
                f"{component.distribution} {component.version}" if component.distribution else "—"
            )
            table.add_row(component.name, component.plugin, dist)
        out.print(table)


@app.command()
def leaderboard(
    target: Annotated[
        str | None, typer.Argument(help="A leaderboard file or benchmark id (default: all)")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where the run records are")] = Path("runs"),
    leaderboards_dir: Annotated[Path, typer.Option(help="Where leaderboard tables go")] = Path(
        "leaderboards"
    ),
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when any record could not be used (each is named)")
    ] = False,
) -> None:
    """Regenerate leaderboard tables from the run records."""
    from harness.results.refresh import regenerate_all

    excluded: list[Any] = []
    paths = regenerate_all(
        target,
        runs_dir,
        leaderboards_dir,
        report=_excluded(excluded),
        say=lambda line: _say(f"harness: {line}"),
    )
    for path in paths:
        if path is not None:
            out.print(f"wrote {path}", soft_wrap=True)
    if strict and excluded:
        _say(f"harness: --strict: {len(excluded)} record(s) could not be used (named above)")
        raise typer.Exit(1)


def _excluded(heard: list[Any]) -> Any:
    """A report that names each record a table leaves out on stderr, one line each."""

    def report(unusable: Any) -> None:
        heard.append(unusable)
        _say(f"harness: warning: {unusable}; left out of its table")

    return report


@app.command()
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

    result = evaluate_submission(data, submission)
    out.print(per_class_table(result.per_class_dice, f"{submission}: per-class Dice"))
    out.print(f"mean Dice {result.mean_dice:.4f} over {len(result.images)} images")
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(result.to_json(), indent=2) + "\n")


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="The reference leaderboard (markdown)")],
    b: Annotated[Path, typer.Argument(help="The leaderboard to compare with it")],
    fail_below: Annotated[
        float | None,
        typer.Option(help="Exit 1 when a shared row's Dice drops by more than this"),
    ] = None,
) -> None:
    """Align two leaderboards by entry; show Dice and cost deltas; flag what is within noise."""
    from harness.results.compare import compare as compare_tables

    result = compare_tables(a, b)
    table = Table(title=f"{b.name} minus {a.name}")
    for col in ("Entry", "A Dice", "B Dice", "Δ Dice", "", "Δ img/s", "Δ peak MB"):
        table.add_column(col, justify="left" if col == "Entry" else "right")
    for d in result.deltas:
        noise = d.within_noise
        colour = "dim" if noise in (True, None) else ("green" if d.dice > 0 else "red")
        mark = {True: "within noise", False: "real", None: "noise unknown"}[noise]
        table.add_row(
            d.entry,
            f"{d.a.mean:.4f}",
            f"{d.b.mean:.4f}",
            f"[{colour}]{d.dice:+.4f}[/{colour}]",
            mark,
            _signed(d.cost("images_per_s"), 1),
            _signed(d.cost("peak_mb"), 0),
        )
    out.print(table)
    for label, names in (("only in A", result.only_a), ("only in B", result.only_b)):
        if names:
            out.print(f"{label}: {'; '.join(names)}", markup=False)
    if fail_below is not None:
        drops = result.drops_below(fail_below)
        for d in drops:
            err.print(f"harness: {d.entry}: Dice dropped by {-d.dice:.4f} (> {fail_below})")
        if drops:
            raise typer.Exit(1)


def _signed(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:+.{digits}f}"


@app.command()
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
        str, typer.Option(help="none, or flip: logits averaged with the mirror's")
    ] = "none",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    batch_size: Annotated[int | None, typer.Option(help="Images per forward pass")] = None,
    num_workers: Annotated[int, typer.Option(help="Data-loader workers")] = 0,
    plugin: Annotated[list[str] | None, typer.Option(help="Plugin the model came from")] = None,
) -> None:
    """Write the competition's submission CSV from a finished run's final weights, or from
    an ensemble of runs; with --split val and several runs, each one's Dice and the ensemble's."""
    from harness.runs.predict import predict_ensemble

    with bars.bar("Predicting", err) as progress:
        prediction = predict_ensemble(
            run_dirs,
            data,
            out_path,
            split=split,
            tta=tta,
            device=device,
            batch_size=batch_size,
            plugins=plugin or (),
            num_workers=num_workers,
            progress=progress,
            score=len(run_dirs) > 1,
        )
    if prediction.ensemble_dice is not None:
        out.print(_ensemble_table(prediction))
    out.print(f"wrote {prediction.path}", soft_wrap=True)


def _ensemble_table(prediction: Any) -> Table:
    """Validation Dice of each member and of the ensemble (``runs.predict.Prediction``)."""
    table = Table(title=f"Validation mean Dice: ensemble of {len(prediction.runs)} runs")
    table.add_column("Run")
    table.add_column("Mean Dice", justify="right")
    table.add_column("vs ensemble", justify="right")
    for run, dice in zip(prediction.runs, prediction.member_dice, strict=True):
        table.add_row(str(run), f"{dice:.4f}", f"{dice - prediction.ensemble_dice:+.4f}")
    table.add_row("ensemble", f"{prediction.ensemble_dice:.4f}", "")
    return table


@app.command("check-plugin")
def check_plugin(
    name: Annotated[str, typer.Argument(help="Component name, optionally NAME:KEY=VALUE,...")],
    kind: Annotated[str | None, typer.Option(help="models, losses, ... (when ambiguous)")] = None,
    encoder: Annotated[str | None, typer.Option(help="Encoder for a model's check")] = None,
    plugin: Annotated[
        list[str] | None, typer.Option(help="Extra plugin module or .py file")
    ] = None,
) -> None:
    """Conformance check of one component; exit 1 when any check fails."""
    from harness.components.conformance import check_component, resolve_kind
    from harness.components.entry import parse_component
    from harness.components.registry import Registry

    spec = parse_component(name, "check-plugin")
    registry = Registry.load(plugin or ())
    kind = resolve_kind(registry, spec.name, kind)
    report = check_component(registry, kind, spec.name, spec.kwargs, encoder=encoder)
    table = Table(title=report.title)
    for col in ("check", "result", "detail"):
        table.add_column(col)
    for check in report.checks:
        result = "[green]pass[/green]" if check.passed else "[red]FAIL[/red]"
        table.add_row(check.name, result, check.detail)
    out.print(table)
    out.print(report.summary)
    if not report.ok:
        raise typer.Exit(1)


@data_app.command("synth")
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
    out.print(f"wrote {out_dir}")


@data_app.command("check")
def data_check(
    path: Annotated[Path, typer.Argument(help="Dataset folder")],
) -> None:
    """Validate a dataset: every image has its labels, every label file is valid."""
    from harness.data.checks import check_dataset

    with bars.bar("Checking images", err) as progress:
        problems, count = check_dataset(path, progress=progress)
    for problem in problems:
        err.print(f"harness: error: {problem}", markup=False, highlight=False)
    if problems:
        raise typer.Exit(2)
    out.print(f"{path}: {count} labelled images, all valid")


@data_app.command("stats")
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

    if path is None:
        from harness import protocol
        from harness.data.sources import synthetic_dataset

        p = protocol.load("synthetic")
        path = synthetic_dataset(p.synth_ids, p.synth_size, p.synth_seed)
    with bars.bar("Measuring", err) as progress:
        stats = compute_stats(path, progress=progress)
    out.print(stats_table(stats))
    for written in write_report(stats, out_dir):
        out.print(f"wrote {written}", soft_wrap=True)


def _say(line: str) -> None:
    """An error line on stderr; from a rank other than 0 of a data-parallel run, marked so."""
    rank = os.environ.get("RANK", "0")
    if rank != "0":  # that rank's consoles are quiet, and its error may be the only one
        line = f"[rank {rank}] {line}"
    Console(stderr=True).print(line, markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    """Entry point: run the app and map errors to exit codes."""
    debug = "--debug" in sys.argv[1:]
    try:
        code = app(standalone_mode=False)
    except HarnessError as exc:
        if debug:
            raise
        if not exc.echoed:
            _say(f"harness: error: {exc}")
        sys.exit(2)
    except RunFailed as exc:
        if debug:
            raise
        if not exc.echoed:
            _say(f"harness: run failed: {exc}")
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("harness: interrupted")
        sys.exit(130)
    except typer.TyperException as exc:  # typer's own click: bad options and arguments
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("harness: interrupted")
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)
