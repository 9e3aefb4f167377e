"""What ``harness run`` (and each run of ``harness sweep`` and ``tune``) is asked, before
anything is resolved, as typed values in three parts:

- ``EntryChoice``: what runs (the components by name with their parameters, the encoder,
  test-time augmentation, the entry's own hyperparameters as numbers);
- ``BenchmarkChoice``: on what (the protocol and its overrides, the data, the seeds);
- ``Launch``: how and where (device, precision, processes, ``--jobs``/``--cluster``,
  tracking, kept predictions, folders, resume).

Each option is declared once, on its field, with its flag, help text and (where the
command line's text is not the value itself) how to read and write it: the command line
makes its options from these declarations (``harness.cli.options``), ``RunRequest.from_options``
builds the request from what it was given, and ``resume_command`` writes a request back as
the command that continues it (a ``ResumeHint`` holds that command as values until it is
said). A new option is one new field. Inside the package requests travel as these objects
(``RunRequest.replace``), never as command-line text.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import protocol as protocols
from harness.components.entry import parse_component, parse_hparams
from harness.components.kinds import BY_FIELD, TRAINING_KINDS
from harness.components.registry import Registry
from harness.errors import HarnessError
from harness.runs.tracking import check_track, track_help


@dataclass(frozen=True)
class Flag:
    """How one request field is spelled on the command line."""

    #: The option, e.g. ``--augmentation``.
    name: str
    #: Its help text.
    help: str
    #: Its place in ``--help`` and in a written command.
    order: float
    #: Written back even at its default value (so the command names what the run used).
    always: bool = False
    #: Left out of ``--help`` (set by ``harness tune`` for the runs it starts, not by users).
    hidden: bool = False
    #: Written after every other option (the folders, then ``--resume``).
    last: bool = False
    #: The value from what the command line gave (None: the same).
    read: Callable[[Any], Any] | None = None
    #: The text(s) the command line takes for a value (None: ``str``).
    show: Callable[[Any], Sequence[str]] | None = None
    #: Older spellings still accepted, never shown in ``--help`` nor written (``--aug``).
    aliases: tuple[str, ...] = ()

    def write(self, value: Any, default: Any) -> list[str]:
        """The arguments that give ``value`` on the command line ([] when the default does)."""
        if isinstance(value, bool):
            return [self.name] if value else []
        if value is None or (value == default and not self.always):
            return []
        texts = self.show(value) if self.show else value
        if isinstance(texts, list | tuple):
            return [arg for item in texts for arg in (self.name, str(item))]
        return [self.name, str(texts)]


def _option(flag: str, help: str, default: Any = dataclasses.MISSING, **spec: Any) -> Any:
    """A request field declared with its flag: ``order`` and the other ``Flag`` fields by
    name (``flag(field)`` reads the declaration back)."""
    return field(default=default, metadata={"flag": Flag(flag, help, **spec)})


def parse_seeds(text: str | None, default: Sequence[int]) -> list[int]:
    """``3`` means seeds 0, 1, 2; ``0,4,7`` means exactly those."""
    if text is None:
        return list(default)
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise HarnessError(f"--seeds {text!r}: give a count (3) or a list (0,1,2)") from None
    if not seeds and text.strip() == "0":
        raise HarnessError(
            "--seeds 0: a count of zero seeds runs nothing; to run seed 0 alone write "
            "--seeds 0, (a list of one) or --seeds 1 (a count of one)"
        )
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise HarnessError(f"--seeds {text!r}: need at least one seed, non-negative, no repeats")
    return seeds


def _read_seeds(text: str | None) -> tuple[int, ...] | None:
    return None if text is None else tuple(parse_seeds(text, ()))


def _show_seeds(seeds: Sequence[int]) -> list[str]:
    """A count when the seeds are 0..N-1, else the list (one seed: ``5,``)."""
    seeds = tuple(seeds)
    if seeds == tuple(range(len(seeds))):
        return [str(len(seeds))]
    return [",".join(map(str, seeds)) + ("," if len(seeds) == 1 else "")]


def _read_folds(text: str | None) -> tuple[int, ...] | str | None:
    """``all``, or a list of folds (``0,2,4``): each a number, none repeated."""
    if text is None or text.strip() == "all":
        return None if text is None else "all"
    try:
        folds = tuple(int(f) for f in text.split(",") if f.strip())
    except ValueError:
        raise HarnessError(
            f"--folds {text!r}: give all, or a list of folds such as 0,2,4"
        ) from None
    if not folds or len(set(folds)) != len(folds) or any(f < 0 for f in folds):
        raise HarnessError(f"--folds {text!r}: name each fold once (0,2,4), or give all")
    return folds


def _show_folds(folds: tuple[int, ...] | str) -> list[str]:
    return [folds if isinstance(folds, str) else ",".join(map(str, folds))]


def _read_track(text: str | None) -> tuple[str, ...] | None:
    """``tensorboard,mlflow``: the trackers in order, each once (checked when planned)."""
    if text is None:
        return None
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    return names or None


def _show_hparams(hparams: Sequence[tuple[str, float]]) -> list[str]:
    return [f"{k}={v!r}" for k, v in hparams]


@dataclass(frozen=True)
class EntryChoice:
    """What runs: the components (``None``: the protocol's), the encoder, TTA, and the
    protocol fields the entry sets for itself (``harness tune`` chose them: ``tuned``)."""

    model: str = _option(
        BY_FIELD["model"].option,
        "Model plugin, e.g. unetpp or unetpp:decoder_attention_type=scse",
        order=0,
    )
    loss: str = _option(
        BY_FIELD["loss"].option, "Loss plugin, e.g. dice or combo:dice=0.7,bce=0.3", order=1
    )
    optimizer: str | None = _option(
        BY_FIELD["optimizer"].option,
        "Optimizer plugin (protocol default if omitted)",
        None,
        order=2,
    )
    scheduler: str | None = _option(
        BY_FIELD["scheduler"].option,
        "Scheduler plugin (protocol default if omitted)",
        None,
        order=3,
    )
    augmentation: str | None = _option(
        BY_FIELD["augmentation"].option,
        "Augmentation plugin (protocol default if omitted)",
        None,
        order=4,
        aliases=BY_FIELD["augmentation"].aliases,
    )
    encoder: str | None = _option("--encoder", "Override the protocol's encoder", None, order=5)
    #: Test-time augmentation for validation: "none" or "flip" (recorded in the entry).
    tta: str = _option(
        "--tta", "Validation test-time augmentation: none or flip (in the entry)", "none", order=12
    )
    #: Protocol fields the entry sets for itself, as numbers, sorted by name.
    hparams: tuple[tuple[str, float], ...] = _option(
        "--hparam",
        "Set the entry's own lr, weight_decay, warmup_epochs or grad_clip: FIELD=NUMBER "
        "(repeatable; in the entry, the benchmark stays the protocol's)",
        (),
        order=13,
        read=lambda texts: parse_hparams(texts or ()),
        show=_show_hparams,
    )
    #: The tuning budget that chose ``hparams`` (``harness tune`` sets it for its final runs).
    tuned: str | None = _option(
        "--tuned", "The tuning budget that chose --hparam", None, order=14, hidden=True
    )


@dataclass(frozen=True)
class BenchmarkChoice:
    """On what: the protocol with its overrides, the data (None: the built-in phantom), the
    seeds (None: the protocol's)."""

    data: Path | None = _option(
        "--data", "Dataset folder (default: the built-in synthetic phantom)", None, order=6
    )
    protocol: str = _option(
        "--protocol", "Protocol name or TOML file", "synthetic", order=7, always=True
    )
    seeds: tuple[int, ...] | None = _option(
        "--seeds",
        "A count (3) or a list (0,1,2)",
        None,
        order=8,
        read=_read_seeds,
        show=_show_seeds,
    )
    #: Cross-validation: the protocol's folds to train on, each left out in turn (``all``,
    #: or a tuple); None: the protocol's own ``fold``, one benchmark as before.
    folds: tuple[int, ...] | str | None = _option(
        "--folds",
        "Cross-validate: train on each of these folds of the protocol (all, or 0,2,4), "
        "times the seeds; the rows go to a table of their own",
        None,
        order=8.5,
        read=_read_folds,
        show=_show_folds,
    )
    #: ``--set KEY=VALUE`` as the user wrote them (each read by the protocol, by its type).
    sets: tuple[str, ...] = _option(
        "--set", "Override a protocol field: KEY=VALUE (repeatable)", (), order=10
    )
    #: Protocol fields set by the harness itself, as values, after ``sets`` (a tuning
    #: trial's fold and excluded folds); not an option.
    overrides: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Launch:
    """How and where the runs go: device, precision, processes, executor, tracking, folders,
    resume."""

    device: str = _option("--device", "auto, cpu or cuda", "auto", order=11)
    #: Split each batch into pieces of this size (gradient accumulation); None: whole
    #: batches, halved automatically if the first step runs out of GPU memory.
    micro_batch: int | None = _option(
        "--micro-batch",
        "Split each batch into pieces of N (gradient accumulation; same protocol). "
        "Default: whole batches, halved automatically if the first step runs out of memory",
        None,
        order=15,
    )
    #: Run the training step through torch.compile (recorded; not part of the protocol).
    compile: bool = _option(
        "--compile", "Run the training step through torch.compile", False, order=16
    )
    #: The training (and validation) precision: ``auto`` (bf16 on a GPU that supports it,
    #: else fp16 with a grad scaler; fp32 on a CPU), or ``fp32``, ``bf16``, ``fp16`` on any
    #: device (recorded as ``cost.precision``; not part of the protocol).
    precision: str = _option(
        "--precision",
        "auto, fp32, bf16 or fp16 (auto: bf16 on a GPU that supports it, else fp16; fp32 on a "
        "CPU). On a CPU bf16 and fp16 train under CPU autocast; recorded, not in the protocol",
        "auto",
        order=17,
    )
    #: Also log each run to these trackers (``harness.runs.tracking``): tensorboard, mlflow,
    #: wandb; every run writes ``metrics.jsonl`` whatever this says.
    track: tuple[str, ...] | None = _option(
        "--track",
        track_help(),
        None,
        order=18,
        read=_read_track,
        show=lambda names: [",".join(names)],
    )
    #: Train up to N runs (seeds, sweep values) at once on this machine, each a Ray task
    #: (harness.runs.executors.ray); None: one after another in this process, without Ray.
    jobs: int | None = _option(
        "--jobs",
        "Train up to N runs at once (Ray; a local instance is started and stopped for you)",
        None,
        order=19,
    )
    #: Where the runs train: an existing Ray cluster's address (what `ray start --head`
    #: prints), or ``slurm:PARTITION`` (one Slurm job array; harness.runs.executors.slurm).
    cluster: str | None = _option(
        "--cluster",
        "Train the runs on this Ray cluster (the address `ray start --head` prints), or on "
        "Slurm as one job array (slurm:PARTITION); records and weights come back to --runs-dir",
        None,
        order=20,
    )
    #: What else the cluster's scheduler is asked for each task (sbatch's options, by name:
    #: ``time=4:00:00``, ``account=lab``); ``KEY`` alone is a flag.
    cluster_opts: tuple[str, ...] = _option(
        "--cluster-opt",
        "With --cluster slurm:PARTITION, an sbatch option for every task: KEY=VALUE, e.g. "
        "time=4:00:00, account=A, qos=Q, constraint=C (repeatable)",
        (),
        order=20.3,
    )
    #: Send the runs and return at once; a later ``--resume`` (or ``harness leaderboard``)
    #: collects what finished.
    detach: bool = _option(
        "--detach",
        "With --cluster slurm:PARTITION, submit the runs and return (the Slurm job id is "
        "printed); the same command with --resume later collects them",
        False,
        order=20.6,
    )
    #: Print what would train, what is skipped and an estimate of device-hours; train nothing.
    dry_run: bool = _option(
        "--dry-run",
        "Print the runs that would train and an estimate of device-hours",
        False,
        order=21,
    )
    #: Keep each run's validation probabilities beside its record (``predictions.npz``,
    #: ``harness.results.predictions``), under every test-time augmentation installed, for
    #: ``harness select``; not part of the protocol or the entry.
    keep_predictions: bool = _option(
        "--keep-predictions",
        "Keep each run's validation probabilities (uint8, compressed, at the scoring "
        "resolution, under every test-time augmentation) beside its record, for harness select",
        False,
        order=21.5,
    )
    runs_dir: Path = _option(
        "--runs-dir", "Where run folders and records go", Path("runs"), order=22, always=True,
        last=True,
    )  # fmt: skip
    #: None: beside the runs, ``<runs-dir>/leaderboards`` (``tables_dir``); a published
    #: folder (the checkout's ``leaderboards/``) is written only when named.
    leaderboards_dir: Path | None = _option(
        "--leaderboards-dir",
        "Where leaderboard tables go (default: <runs-dir>/leaderboards; a published folder "
        "such as leaderboards/ is written only when named)",
        None,
        order=23,
        always=True,
        last=True,
    )
    #: Continue each seed from its last checkpoint; a seed whose record says succeeded is
    #: only reported, and one with no checkpoint starts from the beginning.
    resume: bool = _option(
        "--resume", "Continue each seed from its last checkpoint", False, order=24, last=True
    )
    #: Train again a run that already succeeded (a finished run is skipped without it); the
    #: earlier success stays if the new run fails or stops.
    rerun: bool = _option(
        "--rerun",
        "Train again runs that already succeeded (skipped without it); an earlier success is "
        "kept if the new run fails",
        False,
        order=24.5,
        last=True,
    )
    #: Processes one run trains on, data-parallel (torch.distributed); each job of the
    #: dispatcher is launched over this many (``harness.runs.ranks``).
    nproc: int = _option(
        "--nproc",
        "Train data-parallel over N processes (torch.distributed.run, as torchrun)",
        1,
        order=25,
    )

    @property
    def tables_dir(self) -> Path:
        """Where the tables go: ``--leaderboards-dir``, else beside the runs."""
        return Path(self.leaderboards_dir or Path(self.runs_dir) / "leaderboards")

    def check(self) -> None:
        """Options that contradict each other: one line."""
        if self.resume and self.rerun:
            raise HarnessError(
                "--resume continues interrupted runs and --rerun trains finished ones again "
                "from the start; give one of them"
            )


#: The parts of a request, by the ``RunRequest`` attribute that holds each.
PARTS: dict[str, type] = {"entry": EntryChoice, "benchmark": BenchmarkChoice, "launch": Launch}


@dataclass(frozen=True)
class RunRequest:
    """What ``harness run`` was asked, before anything is resolved: what runs, on what,
    and how, and the extra plugins that provide the components."""

    entry: EntryChoice
    benchmark: BenchmarkChoice = BenchmarkChoice()
    launch: Launch = Launch()
    plugins: tuple[str, ...] = _option(
        "--plugin", "Extra plugin module or .py file (repeatable)", (), order=9
    )

    @classmethod
    def of(cls, **values: Any) -> RunRequest:
        """A request from field values by name (``model=``, ``seeds=``, ``runs_dir=``...)."""
        parts = {name: {} for name in PARTS}
        own = {}
        for name, value in values.items():
            part = _part_of(name)
            (own if part is None else parts[part])[name] = value
        return cls(**{k: PARTS[k](**v) for k, v in parts.items()}, **own)

    @classmethod
    def from_options(cls, **given: Any) -> RunRequest:
        """A request from the command line's values: each read by its option (``--seeds 3``
        is seeds 0, 1, 2), a repeatable option not given is ``()``."""
        values = {}
        for name, value in given.items():
            spec = flag(field_of(name))
            if spec.read is not None:
                value = spec.read(value)
            elif isinstance(field_of(name).default, tuple):
                value = tuple(value or ())
            values[name] = value
        return cls.of(**values)

    def replace(self, **changes: Any) -> RunRequest:
        """This request with fields changed by name, wherever they live."""
        parts: dict[str, dict[str, Any]] = {}
        own = {}
        for name, value in changes.items():
            part = _part_of(name)
            if part is None:
                own[name] = value
            else:
                parts.setdefault(part, {})[name] = value
        changed = {k: dataclasses.replace(getattr(self, k), **v) for k, v in parts.items()}
        return dataclasses.replace(self, **changed, **own)

    def value(self, name: str) -> Any:
        """The value of a field by name, wherever it lives."""
        part = _part_of(name)
        return getattr(self if part is None else getattr(self, part), name)

    def check_early(self) -> None:
        """What can be checked from the request, its protocol and the plugins alone, with
        nothing heavy imported (no torch, no data): the protocol and its ``--set``, each
        component's name and parameters (the protocol's defaults too: ``Registry.check``)
        and ``--track``. The planner checks all of it again, and more
        (``Planner.resolve``); a command calls this first so that such a mistake is one
        line at once, before it loads what training needs."""
        choice = self.benchmark
        proto = protocols.load(choice.protocol).derive(list(choice.sets))
        proto = proto.with_values(choice.overrides)
        registry = Registry.load(self.plugins)
        for kind in TRAINING_KINDS:
            text = getattr(self.entry, kind.field) or getattr(proto, kind.field, "")
            registry.check(kind.plural, parse_component(text, kind.option))
        check_track(self.launch.track)
        self.launch.check()


def _part_of(name: str) -> str | None:
    for part, kind in PARTS.items():
        if name in {f.name for f in dataclasses.fields(kind)}:
            return part
    if name in {f.name for f in dataclasses.fields(RunRequest)} - set(PARTS):
        return None
    raise TypeError(f"no request field {name!r}")


def flag(f: dataclasses.Field) -> Flag:
    """The command-line declaration of a request field."""
    return f.metadata["flag"]


def option_fields() -> list[dataclasses.Field]:
    """Every request field that is a command-line option, in ``--help`` order."""
    found: list[dataclasses.Field] = []
    for kind in (*PARTS.values(), RunRequest):
        found += [f for f in dataclasses.fields(kind) if "flag" in f.metadata]
    return sorted(found, key=lambda f: flag(f).order)


def field_of(name: str) -> dataclasses.Field:
    """The option field called ``name``."""
    for f in option_fields():
        if f.name == name:
            return f
    raise TypeError(f"no request option {name!r}")


def options_of(request: RunRequest) -> Iterator[tuple[dataclasses.Field, Any]]:
    """Each option field with its value in ``request``."""
    for f in option_fields():
        yield f, request.value(f.name)


def resume_command(
    request: RunRequest,
    command: str = "run",
    lead: Sequence[str] = (),
    tail: Sequence[str] = (),
) -> str:
    """The ``harness COMMAND ... --resume`` command that continues ``request`` (``lead``:
    the command's own options first, e.g. ``--vary``; ``tail``: after, e.g. ``--trials``).

    Every option is written from its declaration, the folders and ``--resume`` last; a run
    under a bare torchrun is resumed by rerunning that torchrun command.
    """
    from harness.engine import distributed

    request = request.replace(resume=True, rerun=False)  # continue, never train again
    if request.launch.nproc == 1 and os.environ.get(distributed.NPROC_ENV):
        request = request.replace(nproc=int(os.environ[distributed.NPROC_ENV]))
    elif distributed.launched() and request.launch.nproc == 1:
        return "the same torchrun command with --resume added to the harness arguments"
    first, last = [], []
    for f, value in options_of(request):
        (last if flag(f).last else first).extend(flag(f).write(value, f.default))
    return shlex.join(["harness", command, *lead, *first, *last, *tail])


@dataclass(frozen=True)
class ResumeHint:
    """The command that continues a request's runs, kept as values until it is said (a
    Ctrl-C, a refused run, a full disk): ``harness COMMAND`` with ``request``'s options and
    ``--resume``; ``lead``: the command's own options first (``--vary``), ``tail``: after
    (``--trials``). ``text`` writes it (``resume_command``)."""

    request: RunRequest
    command: str = "run"
    lead: tuple[str, ...] = ()
    tail: tuple[str, ...] = ()

    def text(self) -> str:
        """The command, as the user types it."""
        return resume_command(self.request, self.command, self.lead, self.tail)
