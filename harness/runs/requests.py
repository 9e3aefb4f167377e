"""What ``harness run`` (and each run of ``harness sweep``) is asked, before anything is resolved.

Each field of ``RunRequest`` is declared once, here, with its command-line flag and help
text: the command line makes its options from these declarations (``harness.cli.options``),
builds the request from them, and ``resume_command`` writes a request back as the command
that continues it. A new option is one new field.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


@dataclass(frozen=True)
class Flag:
    """How one ``RunRequest`` field is spelled on the command line."""

    #: The option, e.g. ``--aug``.
    name: str
    #: Its help text.
    help: str
    #: Written back even at its default value (so the command names what the run used).
    always: bool = False
    #: Left out of ``--help`` (set by ``harness tune`` for the runs it starts, not by users).
    hidden: bool = False

    def write(self, value: Any, default: Any) -> list[str]:
        """The arguments that give ``value`` on the command line ([] when the default does)."""
        if isinstance(value, bool):
            return [self.name] if value else []
        if isinstance(value, list | tuple):
            return [arg for item in value for arg in (self.name, str(item))]
        if value is None or (value == default and not self.always):
            return []
        return [self.name, str(value)]


def _option(
    flag: str,
    help: str,
    default: Any = dataclasses.MISSING,
    *,
    always: bool = False,
    hidden: bool = False,
):
    """A ``RunRequest`` field declared with its flag (``flag(field)`` reads it back)."""
    return field(default=default, metadata={"flag": Flag(flag, help, always, hidden)})


@dataclass(frozen=True)
class RunRequest:
    """What ``harness run`` was asked, before anything is resolved.

    Repeatable options (``plugins``, ``sets``) are tuples; ``None`` means "the protocol's
    default" for the components, the encoder and the seeds.
    """

    model: str = _option(
        "--model", "Model plugin, e.g. unetpp or unetpp:decoder_attention_type=scse"
    )
    loss: str = _option("--loss", "Loss plugin, e.g. dice or combo:dice=0.7,bce=0.3")
    optimizer: str | None = _option(
        "--optimizer", "Optimizer plugin (protocol default if omitted)", None
    )
    scheduler: str | None = _option(
        "--scheduler", "Scheduler plugin (protocol default if omitted)", None
    )
    augmentation: str | None = _option(
        "--aug", "Augmentation plugin (protocol default if omitted)", None
    )
    encoder: str | None = _option("--encoder", "Override the protocol's encoder", None)
    data: Path | None = _option(
        "--data", "Dataset folder (default: the built-in synthetic phantom)", None
    )
    protocol: str = _option("--protocol", "Protocol name or TOML file", "synthetic", always=True)
    seeds: str | None = _option("--seeds", "A count (3) or a list (0,1,2)", None)
    plugins: Sequence[str] = _option("--plugin", "Extra plugin module or .py file (repeatable)", ())
    sets: Sequence[str] = _option("--set", "Override a protocol field: KEY=VALUE (repeatable)", ())
    device: str = _option("--device", "auto, cpu or cuda", "auto")
    #: Test-time augmentation for validation: "none" or "flip" (recorded in the entry).
    tta: str = _option(
        "--tta", "Validation test-time augmentation: none or flip (in the entry)", "none"
    )
    #: Protocol fields the entry sets for itself (``harness.components.entry.parse_hparams``).
    hparams: Sequence[str] = _option(
        "--hparam",
        "Set the entry's own lr, weight_decay, warmup_epochs or grad_clip: FIELD=NUMBER "
        "(repeatable; in the entry, the benchmark stays the protocol's)",
        (),
    )
    #: The tuning budget that chose ``hparams`` (``harness tune`` sets it for its final runs).
    tuned: str | None = _option(
        "--tuned", "The tuning budget that chose --hparam", None, hidden=True
    )
    #: Split each batch into pieces of this size (gradient accumulation); None: whole
    #: batches, halved automatically if the first step runs out of GPU memory.
    micro_batch: int | None = _option(
        "--micro-batch",
        "Split each batch into pieces of N (gradient accumulation; same protocol). "
        "Default: whole batches, halved automatically if the first step runs out of memory",
        None,
    )
    #: Run the training step through torch.compile (recorded; not part of the protocol).
    compile: bool = _option("--compile", "Run the training step through torch.compile", False)
    #: Also write TensorBoard event files in each run folder (``harness.runs.tracking``);
    #: every run writes ``metrics.jsonl`` whatever this says.
    track: str | None = _option(
        "--track",
        "Also log to: tensorboard (event files under each run folder's tensorboard/; "
        "needs pip install tensorboard)",
        None,
    )
    #: Train up to N runs (seeds, sweep values) at once on this machine, each a Ray task
    #: (harness.runs.executors); None: one after another in this process, without Ray.
    jobs: int | None = _option(
        "--jobs",
        "Train up to N runs at once (Ray; a local instance is started and stopped for you)",
        None,
    )
    #: An existing Ray cluster's address (what `ray start --head` prints) to train the runs on.
    cluster: str | None = _option(
        "--cluster",
        "Train the runs on this Ray cluster (the address `ray start --head` prints); "
        "records and weights come back to --runs-dir",
        None,
    )
    #: Print what would train, what is skipped and an estimate of device-hours; train nothing.
    dry_run: bool = _option(
        "--dry-run", "Print the runs that would train and an estimate of device-hours", False
    )
    # Where the run's files go: written last (after the launcher's flags) by resume_command.
    runs_dir: Path = _option(
        "--runs-dir", "Where run folders and records go", Path("runs"), always=True
    )
    leaderboards_dir: Path = _option(
        "--leaderboards-dir", "Where leaderboard tables go", Path("leaderboards"), always=True
    )
    #: Continue each seed from its last checkpoint; a seed whose record says succeeded is
    #: only reported, and one with no checkpoint starts from the beginning.
    resume: bool = _option("--resume", "Continue each seed from its last checkpoint", False)


def flag(f: dataclasses.Field) -> Flag:
    """The command-line declaration of a ``RunRequest`` field."""
    return f.metadata["flag"]


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


def resume_command(request: RunRequest) -> str:
    """The ``harness run ... --resume`` command that continues ``request``.

    Every field is written from its declaration; in a data-parallel run the launcher's
    ``--nproc`` goes before the folders (a run under a bare torchrun is resumed by rerunning
    that torchrun command).
    """
    from harness.engine import distributed

    if os.environ.get(distributed.NPROC_ENV):
        launch = ["--nproc", os.environ[distributed.NPROC_ENV]]
    elif distributed.launched():  # started by a torchrun command: that command resumes it
        return "the same torchrun command with --resume added to the harness arguments"
    else:
        launch = []
    request = dataclasses.replace(request, resume=True)
    args = ["harness", "run"]
    for f in dataclasses.fields(request):
        if f.name == "runs_dir":
            args += launch
        args += flag(f).write(getattr(request, f.name), f.default)
    return shlex.join(args)
