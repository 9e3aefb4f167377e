"""Checkpoints: a run killed at any moment resumes where it stopped, with the same result.

Benchmark runs take days on real GPUs, so a crash, a kill or a Ctrl-C must cost minutes,
never a result. A checkpoint is two files under ``RUN_DIR/checkpoints/``:

- ``NAME.safetensors``: the model weights (safetensors: loading it runs no code);
- ``NAME.pt``: everything else (epoch, history, optimizer, scheduler, grad-scaler and
  every random state), made only of tensors and plain containers so it is read with
  ``torch.load(weights_only=True)`` and never unpickles arbitrary objects.

``NAME`` is ``last`` (where ``--resume`` continues) or ``best`` (the best validated
epoch so far, weights and its Dice only). Each file is written atomically (temp file,
fsync, rename), and the pair is committed by the state file, which carries the SHA-256
of its weights: the new weights are first renamed to ``NAME.next.safetensors``, then the
state file replaces the old one (the commit), then the weights take their final name. A
kill between any two steps leaves either the old pair or the new pair recoverable, and a
file that matches nothing is reported, never loaded.

Random states are captured exactly so that a resumed run draws the same numbers as one
left alone: Python's, NumPy's, torch's (CPU and CUDA), the DataLoader's generator (the
shuffling) and, for albumentations transforms, each transform's own generators.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import random
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.atomic import atomic_write_bytes, fsync_dir
from harness.errors import HarnessError

#: The folder inside a run folder that holds its checkpoints.
CHECKPOINT_DIR = "checkpoints"
#: Bump when the state file's layout changes incompatibly.
FORMAT = 1
KIND = "harness-checkpoint"
WEIGHTS_SUFFIX = ".safetensors"
STATE_SUFFIX = ".pt"


class CheckpointError(HarnessError):
    """A checkpoint that cannot be used (corrupt, truncated, of another run): exit 2."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model's weights and the rest of the training state."""

    path: Path  # the state file
    weights_path: Path
    weights: dict[str, torch.Tensor]
    state: dict[str, Any]

    @property
    def epoch(self) -> int:
        """Epochs completed."""
        return int(self.state["epoch"])

    @property
    def batch(self) -> int:
        """Batches done in the next epoch (non-zero only for a checkpoint taken mid-epoch)."""
        return int(self.state.get("batch", 0))

    def describe(self) -> str:
        """``epoch 3`` or ``epoch 4, batch 7`` (where training continues from)."""
        if self.batch:
            return f"epoch {self.epoch + 1}, after batch {self.batch}"
        return f"the end of epoch {self.epoch}"


def directory(run_dir: Path) -> Path:
    """``RUN_DIR/checkpoints``."""
    return Path(run_dir) / CHECKPOINT_DIR


def paths(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """The state file, the weights file and the weights file awaiting its commit."""
    folder = Path(folder)
    return (
        folder / f"{name}{STATE_SUFFIX}",
        folder / f"{name}{WEIGHTS_SUFFIX}",
        folder / f"{name}.next{WEIGHTS_SUFFIX}",
    )


def exists(folder: Path, name: str = "last") -> bool:
    """Whether a committed checkpoint ``name`` is in ``folder`` (its state file is there)."""
    return paths(folder, name)[0].is_file()


def retire(folder: Path, name: str = "last") -> None:
    """Remove checkpoint ``name`` once a run has succeeded: nothing resumes from it any more.

    The state file goes first, so a kill part-way leaves no committed pair, only weights
    that nothing loads (a succeeded record is never resumed).
    """
    for path in paths(Path(folder), name):
        path.unlink(missing_ok=True)


def discard(folder: Path) -> None:
    """Remove every checkpoint in ``folder`` (a fresh run replacing an unfinished one)."""
    if Path(folder).is_dir():
        shutil.rmtree(folder)


# -- weights ------------------------------------------------------------------------------


def weights_bytes(
    state_dict: Mapping[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> bytes:
    """A state dict as safetensors bytes: on the CPU, contiguous, shared storage copied apart.

    safetensors refuses non-contiguous tensors (channels_last weights are not contiguous)
    and tensors that share memory (tied weights), so both become plain copies here.
    """
    from safetensors.torch import save

    out: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for key, value in state_dict.items():
        tensor = value.detach().to("cpu").contiguous()
        if tensor.numel():
            if tensor.untyped_storage().data_ptr() in storages:
                tensor = tensor.clone()
            storages.add(tensor.untyped_storage().data_ptr())
        out[key] = tensor
    return save(out, metadata=metadata)


def _weights_from(path: Path, data: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    try:
        return load(data)
    except Exception as exc:  # SafetensorError and friends: the bytes are not a safetensors file
        reason = " ".join(str(exc).split())[:200]
        raise CheckpointError(
            f"{path}: corrupt or truncated weights file ({reason}); delete it "
            "(and its run's checkpoints folder) to start that run afresh"
        ) from None


# -- saving and loading -------------------------------------------------------------------


def save(
    folder: Path,
    name: str,
    state_dict: Mapping[str, torch.Tensor] | bytes,
    state: Mapping[str, Any],
) -> Path:
    """Write checkpoint ``name`` (weights and state) into ``folder`` atomically; return its path.

    ``state_dict`` may be given already serialized (``weights_bytes``), so one set of
    weights saved under two names is serialized once. ``state`` must hold only tensors,
    numbers, strings, None and lists, tuples and dicts of them; anything else is a
    ``HarnessError`` naming where it sits, because it could not be read back without
    unpickling code.
    """
    folder = Path(folder)
    state_path, weights_path, next_path = paths(folder, name)
    check_plain(state, f"checkpoint {name!r}")
    weights = state_dict if isinstance(state_dict, bytes) else weights_bytes(state_dict)
    digest = hashlib.sha256(weights).hexdigest()
    full = {"kind": KIND, "format": FORMAT, **state, "weights_sha256": digest}
    buffer = io.BytesIO()
    torch.save(full, buffer)
    atomic_write_bytes(next_path, weights)  # 1. new weights beside the old ones
    atomic_write_bytes(state_path, buffer.getvalue())  # 2. the commit
    next_path.replace(weights_path)  # 3. the weights take their name
    fsync_dir(folder)
    return state_path


def load(folder: Path, name: str = "last") -> Checkpoint | None:
    """Checkpoint ``name`` from ``folder``; None when there is none.

    A state file that does not load with ``weights_only=True``, or whose weights are
    missing, corrupt or do not match it, is a ``CheckpointError`` naming the file.
    """
    state_path, weights_path, next_path = paths(folder, name)
    if not state_path.is_file():
        return None
    state = load_state(state_path)
    digest = state["weights_sha256"]
    for candidate in (weights_path, next_path):
        try:
            data = candidate.read_bytes()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() != digest:
            continue
        weights = _weights_from(candidate, data)
        if candidate == next_path:  # killed between the commit and the rename: finish it
            next_path.replace(weights_path)
            fsync_dir(Path(folder))
        return Checkpoint(state_path, weights_path, weights, state)
    if not weights_path.is_file():
        raise CheckpointError(
            f"{weights_path}: missing, but {state_path.name} needs it; delete "
            f"{Path(folder)} to start that run afresh"
        )
    raise CheckpointError(
        f"{weights_path}: corrupt or truncated (its SHA-256 does not match {state_path.name}); "
        f"delete {Path(folder)} to start that run afresh"
    )


def load_state(path: Path) -> dict[str, Any]:
    """A checkpoint's state file, read with ``torch.load(weights_only=True)`` and checked."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: refused: it holds objects other than tensors and plain values, and "
            f"loading them could run code; delete {path.parent} to start that run afresh"
        ) from None
    except Exception as exc:  # EOFError, RuntimeError (not a zip), ...
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise CheckpointError(
            f"{path}: corrupt or truncated checkpoint ({type(exc).__name__}: {reason}); "
            f"delete {path.parent} to start that run afresh"
        ) from None
    if not isinstance(state, dict) or state.get("kind") != KIND:
        raise CheckpointError(
            f"{path}: not a harness checkpoint; delete {path.parent} to start that run afresh"
        )
    if state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: checkpoint format {state.get('format')!r}, this harness reads {FORMAT}; "
            "finish the run with the harness version that started it, or delete "
            f"{path.parent} to start afresh"
        )
    for key, kind in (("epoch", int), ("weights_sha256", str)):
        if not isinstance(state.get(key), kind):
            raise CheckpointError(
                f"{path}: checkpoint lacks a valid {key!r}; delete {path.parent} to start afresh"
            )
    return state


_PLAIN = (type(None), bool, int, float, str, torch.Tensor, torch.dtype, torch.device, torch.Size)


def check_plain(value: Any, where: str) -> None:
    """Refuse anything ``torch.load(weights_only=True)`` could not read back."""
    for path, item in _walk(value, ""):
        if not isinstance(item, _PLAIN):
            raise HarnessError(
                f"{where}: {path or 'the state'} is a {type(item).__module__}."
                f"{type(item).__qualname__}; a checkpointed state_dict may hold only tensors, "
                "numbers, strings and lists/tuples/dicts of them (fix the plugin's state_dict)"
            )


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str | int):
                yield f"{path}[{key!r}] (key)", key
            yield from _walk(item, f"{path}[{key!r}]")
    elif isinstance(value, list | tuple) and not isinstance(value, torch.Size):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")
    else:
        yield path, value


# -- random states ------------------------------------------------------------------------


def global_rng_state() -> dict[str, Any]:
    """Python's, NumPy's (legacy global) and torch's random states, CUDA included if in use."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    cuda: list[torch.Tensor] = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = list(torch.cuda.get_rng_state_all())
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": cuda,
    }


def set_global_rng_state(state: Mapping[str, Any]) -> None:
    """Undo ``global_rng_state``: every global generator continues where it was captured."""
    random.setstate(_tuples(state["python"]))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        if len(state["cuda"]) != torch.cuda.device_count():
            return  # another machine: CUDA streams cannot continue; training still resumes
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value: Any) -> Any:
    """``random.setstate`` wants tuples all the way down."""
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


def _rng_nodes(transform: Any) -> list[Any]:
    """Every object in an albumentations transform tree with its own random generators."""
    nodes: list[Any] = []
    stack = [transform]
    seen: set[int] = set()
    while stack:
        node = stack.pop(0)
        if id(node) in seen:
            continue
        seen.add(id(node))
        gen, py = getattr(node, "random_generator", None), getattr(node, "py_random", None)
        if isinstance(gen, np.random.Generator) and isinstance(py, random.Random):
            nodes.append(node)
        children = getattr(node, "transforms", None)
        if isinstance(children, list | tuple):
            stack[:0] = list(children)
    return nodes


def augment_rng_state(transform: Any) -> list[dict[str, Any]]:
    """The random state of each node of an albumentations transform (``[]`` for others)."""
    if transform is None:
        return []
    return [
        {
            "numpy": _plain_numpy(node.random_generator.bit_generator.state),
            "python": node.py_random.getstate(),
        }
        for node in _rng_nodes(transform)
    ]


def set_augment_rng_state(transform: Any, state: list[Mapping[str, Any]]) -> None:
    """Undo ``augment_rng_state`` on a transform built the same way."""
    if transform is None:
        return
    nodes = _rng_nodes(transform)
    if len(nodes) != len(state):
        raise CheckpointError(
            f"the augmentation has {len(nodes)} random generators but the checkpoint saved "
            f"{len(state)}; was the augmentation plugin changed since the run started?"
        )
    for node, saved in zip(nodes, state, strict=True):
        node.random_generator.bit_generator.state = _numpy_plain(saved["numpy"])
        node.py_random.setstate(_tuples(saved["python"]))


def _plain_numpy(value: Any) -> Any:
    """NumPy arrays inside a bit generator's state become tagged tensors (weights_only-safe)."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(value.astype(np.int64)), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {k: _plain_numpy(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _numpy_plain(value: Any) -> Any:
    if isinstance(value, dict) and "__ndarray__" in value:
        return value["__ndarray__"].numpy().astype(value["dtype"])
    if isinstance(value, dict):
        return {k: _numpy_plain(v) for k, v in value.items()}
    return value
