"""Data-parallel training over N processes: a thin layer over ``torch.distributed``.

``harness run --nproc N`` re-runs the same command in N processes through
``torch.distributed.run`` (what ``torchrun`` runs), so launching it by hand with
``torchrun --standalone --nproc-per-node N -m harness run ...`` is the same thing. Each
process trains one replica on its part of every global batch; only rank 0 writes.

Every function here works in a plain single process too, where it does nothing (or the
obvious thing) without a process group and without importing torch: ``harness list`` and
friends must stay fast, and one code path serves both cases. Collectives are only ever
called when ``world.active``, so a bug that calls one on a single process costs nothing.

What the ranks must agree on is decided here, not by each caller: the shuffling (every
rank draws the same permutation from an identically seeded generator, exactly as the
single-process DataLoader would), the evaluation shards (disjoint, gathered back in
order), and stopping (``agree_any``: one rank's failure or Ctrl-C stops every rank at
the same step, so none is left waiting in a collective).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from harness.errors import HarnessError

if TYPE_CHECKING:
    import numpy as np
    import torch

T = TypeVar("T")

#: What ``torch.distributed.run`` puts in each child's environment that ``init`` needs.
LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


#: Set in the children of ``launch``: the ``--nproc`` they were started with (a bare
#: ``torchrun`` does not set it, so a resume command can say which to rerun).
NPROC_ENV = "HARNESS_NPROC"


@dataclass(frozen=True)
class World:
    """Where this process stands: its rank among ``size`` processes and its local GPU."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that prints results and writes files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process: collectives are needed (and only then are they called)."""
        return self.size > 1


def launched() -> bool:
    """True in a process started by ``torch.distributed.run`` (any size, even one).

    Its children must not launch again, so this is what decides between launching and
    training.
    """
    return all(key in os.environ for key in LAUNCH_ENV)


def _dist() -> Any:
    """``torch.distributed`` if something already imported it, else None (no group then)."""
    return sys.modules.get("torch.distributed")


def _initialized() -> bool:
    dist = _dist()
    return dist is not None and dist.is_available() and dist.is_initialized()


def init(device_type: str) -> World:
    """Join the process group that ``torch.distributed.run`` set up; idempotent.

    The backend follows the device: NCCL for ``cuda`` (each process on the GPU of its local
    rank), gloo otherwise. A launched world of one process needs no group and gets none.
    Not launched: ``World()``, and nothing is imported or initialized.
    """
    if not launched():
        return World()
    if _initialized():
        return current()
    world = World(
        rank=int(os.environ["RANK"]),
        size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ["LOCAL_RANK"]),
    )
    import torch
    import torch.distributed as dist

    device_id = None
    if device_type == "cuda":
        count = torch.cuda.device_count()
        if world.local_rank >= count:
            raise HarnessError(
                f"process {world.local_rank} of {world.size} on this machine needs its own GPU, "
                f"but only {count} {'is' if count == 1 else 'are'} visible; "
                f"use --nproc {count} or fewer"
            )
        torch.cuda.set_device(world.local_rank)
        device_id = torch.device("cuda", world.local_rank)
    if world.active:
        dist.init_process_group(
            backend="nccl" if device_type == "cuda" else "gloo",
            init_method="env://",
            device_id=device_id,
        )
    return world


def current() -> World:
    """This process's World: from the process group, or ``World()`` when there is none."""
    if not _initialized():
        return World()
    dist = _dist()
    return World(
        rank=dist.get_rank(),
        size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def shutdown() -> None:
    """Leave the process group (if any), so a clean exit does not warn about a leaked one.

    On gloo every rank first waits (at most 30 s) for the others to get here: a rank that
    tore its group down while another was still finishing its last collective was seen to
    abort ("terminate called without an active exception", SIGABRT) on a loaded CPU. A rank
    that does not come (it failed) only delays this one's exit by the timeout."""
    if not _initialized():
        return
    dist = _dist()
    if dist.get_backend() == "gloo" and dist.get_world_size() > 1:
        from datetime import timedelta

        with contextlib.suppress(Exception):
            dist.monitored_barrier(timeout=timedelta(seconds=30))
    dist.destroy_process_group()


def _device() -> torch.device:
    """Where collective tensors live: NCCL only moves CUDA tensors, gloo CPU ones."""
    import torch

    if _dist().get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier(world: World) -> None:
    """Wait until every rank gets here (e.g. rank 0 has written what the others read)."""
    if world.active:
        _dist().barrier()


def agree_any(flag: bool, world: World) -> bool:
    """True on every rank if any rank says True: one rank's failure or Ctrl-C stops all.

    Every rank must call it at the same point, as with any collective.
    """
    if not world.active:
        return flag
    import torch

    dist = _dist()
    tensor = torch.tensor([int(flag)], dtype=torch.int32, device=_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def broadcast_object(obj: T, world: World, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (picklable objects; what others pass is ignored)."""
    if not world.active:
        return obj
    box = [obj]
    _dist().broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(obj: T, world: World) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not world.active:
        return [obj]
    gathered: list[Any] = [None] * world.size
    _dist().all_gather_object(gathered, obj)
    return gathered


def shard(n: int, world: World) -> list[int]:
    """This rank's positions among ``n`` evaluation items: rank, rank + size, ...

    No padding and no duplicates (a padded item would count twice in the Dice), so a rank
    may get one item fewer than another, or none at all.
    """
    return list(range(world.rank, n, world.size))


def broadcast_buffers(module: Any, world: World, src: int = 0) -> None:
    """Give every rank the ``src`` rank's buffers (BatchNorm running statistics) in place.

    DistributedDataParallel keeps the parameters of the ranks equal, but each rank's
    buffers move with its own part of the batch after the last broadcast; a model scored on
    several ranks must be one model, the one rank 0 checkpoints.
    """
    if not world.active:
        return
    for buffer in module.buffers():
        _dist().broadcast(buffer, src)


def gather_rows(rows: np.ndarray, positions: Sequence[int], n: int, world: World) -> np.ndarray:
    """Assemble per-item rows computed on every rank into one ``(n, C)`` array, in order.

    ``rows[i]`` belongs to position ``positions[i]``. The result is identical on every rank
    and does not depend on how the items were sharded, so per-class Dice computed from it
    is the single-process Dice. A rank with no positions may pass any empty array (its
    ``C`` is unknown). A position missing or given twice is an error (a bug).
    """
    import numpy as np

    rows = np.asarray(rows)
    if len(positions) == 0 and rows.size == 0:
        own: tuple[Any, Any] = (np.zeros(0, dtype=np.int64), None)
    elif rows.ndim == 2 and rows.shape[0] == len(positions):
        own = (np.asarray(positions, dtype=np.int64).reshape(-1), rows)
    else:
        raise ValueError(
            f"gather_rows: rows must be (len(positions), C), got {rows.shape} "
            f"for {len(positions)} positions"
        )
    parts = [part for part in gather_objects(own, world) if part[1] is not None]
    if not parts:  # no rank had a position
        if n:
            raise ValueError(f"gather_rows: positions missing {list(range(n))}, given twice []")
        return np.zeros((0, rows.shape[1] if rows.ndim == 2 else 0))
    order = np.concatenate([p for p, _ in parts])
    values = np.concatenate([r for _, r in parts])
    outside = order[(order < 0) | (order >= n)]
    if outside.size:
        raise ValueError(f"gather_rows: positions outside 0..{n - 1}: {outside.tolist()}")
    counts = np.bincount(order, minlength=n)
    if (counts != 1).any():
        missing = np.flatnonzero(counts == 0).tolist()
        twice = np.flatnonzero(counts > 1).tolist()
        raise ValueError(f"gather_rows: positions missing {missing}, given twice {twice}")
    result = np.empty_like(values)
    result[order] = values
    return result


class ShardedBatchSampler:
    """Each rank's part of the global batches that ``DataLoader(shuffle=True)`` would make.

    ``batch_size`` is the global (effective) batch, so a protocol means the same training
    whatever the number of processes. Each epoch draws the permutation exactly as
    ``RandomSampler(generator=generator)`` does (and consumes the generator exactly as it
    does, so a checkpointed generator state resumes the same shuffling); it is cut into
    global batches (the last may be short), and rank r gets part r of each, the parts
    contiguous and as equal as possible. A global batch smaller than the world is padded
    from the start of the permutation, because DDP needs every rank to take every step.
    With one process it yields exactly the batches of ``DataLoader(shuffle=True)``.

    Every rank must pass a generator seeded the same way. An iterable of index lists, as
    ``DataLoader(batch_sampler=...)`` takes; not a ``torch`` Sampler subclass so that
    importing this module does not import torch.
    """

    def __init__(self, n: int, batch_size: int, world: World, generator: torch.Generator) -> None:
        if n <= 0:
            raise ValueError(f"ShardedBatchSampler: n must be positive, got {n}")
        if batch_size <= 0:
            raise ValueError(f"ShardedBatchSampler: batch_size must be positive, got {batch_size}")
        self.n = n
        self.batch_size = batch_size
        self.world = world
        self.generator = generator

    def __len__(self) -> int:
        """Global batches per epoch: the same on every rank (DDP steps in lockstep)."""
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        import torch

        n, size = self.n, self.batch_size
        perm = torch.randperm(n, generator=self.generator).tolist()
        last = len(self) - 1
        for b in range(len(self)):
            batch = perm[b * size : (b + 1) * size]
            if b == last and len(batch) < size:
                # RandomSampler draws a second, empty permutation when asked for the item
                # after the last; a short last batch asks for it before it is yielded.
                torch.randperm(n, generator=self.generator)
            yield self._part(batch, perm)
        if n % size == 0:
            # ...and a full last batch asks for it only when the next batch is requested.
            torch.randperm(n, generator=self.generator)

    def _part(self, batch: list[int], perm: list[int]) -> list[int]:
        ranks, rank = self.world.size, self.world.rank
        if len(batch) < ranks:
            batch = batch + [perm[i % len(perm)] for i in range(ranks - len(batch))]
        base, extra = divmod(len(batch), ranks)
        start = rank * base + min(rank, extra)
        return batch[start : start + base + (1 if rank < extra else 0)]


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _exit_code(failures: dict[int, int]) -> tuple[int, str | None]:
    """The exit code for failed ranks (rank -> exit code, negative for a signal).

    A rank that exited by itself printed its own one-line error: its code (the lowest such
    rank's) is the answer. The launcher stops the other ranks with SIGTERM as soon as one
    fails, so those deaths are consequences, not causes. Only when every failed rank died
    from a signal is there nothing printed yet: say which, exit 1 (a failed run).
    """
    exited = {rank: code for rank, code in failures.items() if code > 0}
    if exited:
        return exited[min(exited)], None
    killed = {rank: -code for rank, code in failures.items()}
    causes = [rank for rank, sig in killed.items() if sig != signal.SIGTERM] or list(killed)
    rank = min(causes)
    try:
        name = signal.Signals(killed[rank]).name
    except ValueError:
        name = f"signal {killed[rank]}"
    return 1, f"harness: run failed: rank {rank} was killed by {name}"


@contextlib.contextmanager
def _launcher_quiet() -> Iterator[None]:
    """Silence the launcher's log lines and undo what it leaves behind in this process.

    torch.distributed.run logs every stop ("Sending process ... closing signal SIGTERM",
    "failed (exitcode: 2)") although the children already said what went wrong; it also
    leaves its signal handlers and environment variables behind.
    """
    handled = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT]
    handlers = {sig: signal.getsignal(sig) for sig in handled}
    env = dict(os.environ)
    disabled = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(disabled)
        for key in set(os.environ) - set(env):
            del os.environ[key]
        os.environ.update(env)
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``python -m harness ARGV...`` in ``nproc`` processes; return the exit code.

    The same as ``torchrun --standalone --nproc-per-node NPROC -m harness ARGV...``: a
    local rendezvous on a free port, no restarts, the children's output straight to this
    terminal. 0 when every rank succeeded; otherwise the code of the lowest rank that
    exited with an error (2 bad input, 1 failed run, 130 interrupted), which has printed
    its own one-line message; the launcher's tracebacks and logs are never shown.

    Each child gets ``OMP_NUM_THREADS`` = this machine's CPUs / nproc (at least 1) unless
    it is set: torchrun would set 1 and warn, which leaves cores idle on a CPU machine
    (2 cores, 2 processes: 1 thread each either way).
    """
    if nproc < 1:
        raise HarnessError(f"--nproc must be at least 1, got {nproc}")
    if launched():
        raise HarnessError(
            "already running under torch.distributed.run (torchrun); "
            "leave out --nproc, the launcher sets the number of processes"
        )
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    args = torchrun.parse_args(
        ["--standalone", "--nproc-per-node", str(nproc), "-m", "harness", *argv]
    )
    with _launcher_quiet():
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _cpus() // nproc)))
        os.environ[NPROC_ENV] = str(nproc)  # children know they came from --nproc
        try:
            torchrun.run(args)
        except ChildFailedError as exc:
            code, message = _exit_code({r: f.exitcode for r, f in exc.failures.items()})
        except SignalException as exc:  # the launcher passed the signal on to the children
            sig = signal.Signals(exc.sigval)
            # On Ctrl-C the children say "harness: interrupted" themselves; SIGTERM is silent.
            code = 128 + sig.value
            message = None if sig == signal.SIGINT else f"harness: stopped by {sig.name}"
        except KeyboardInterrupt:  # before the launcher installed its handlers
            code, message = 130, "harness: interrupted"
        except Exception as exc:  # the launcher itself (rendezvous, ports, ...)
            code, message = 1, f"harness: run failed: could not start {nproc} processes: {exc}"
        else:
            return 0
    if message is not None:
        print(message, file=sys.stderr, flush=True)
    return code
