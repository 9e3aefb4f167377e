"""The training loader: shuffled global batches shared out over ranks, each sample drawing its
augmentation from a per-epoch seed, so that every draw follows from one generator that
checkpoints restore (and results depend on neither the loader's workers nor the ranks)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from harness.data.datasets import TrainDataset
from harness.engine.distributed import ShardedBatchSampler, World
from harness.protocol import Protocol


def global_batch(n: int, batch_size: int, done: int) -> int:
    """Images in the ``done``-th global batch of an epoch over ``n`` images (the last is short)."""
    return min(batch_size, n - (done - 1) * batch_size)


class _Keyed(Dataset):
    """Training samples addressed by ``(index, epoch_seed)``: each draws its own augmentation.

    The augmentation's random state is set from the epoch's seed and the sample's index
    before each sample, so what a sample looks like depends on neither the loader worker
    nor the rank that happens to load it, and persistent workers need no reseeding.
    """

    def __init__(self, dataset: TrainDataset) -> None:
        self.dataset = dataset
        self.augment = dataset.augment

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, epoch_seed = key
        if hasattr(self.augment, "set_random_seed"):
            state = np.random.SeedSequence([epoch_seed, index]).generate_state(1)[0]
            self.augment.set_random_seed(int(state))
        return self.dataset[index]


class _KeyedBatches(torch.utils.data.Sampler):
    """A batch sampler's batches as ``(index, epoch_seed)`` keys, one seed drawn per epoch."""

    def __init__(self, batches: ShardedBatchSampler, generator: torch.Generator) -> None:
        self.batches = batches
        self.generator = generator

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        # One int64 then the permutation: the draws, in order, of a shuffled DataLoader
        # (its workers' base seed, then RandomSampler's), so un-augmented runs train on
        # exactly the batches of the loader this harness used before, and results do not
        # depend on the number of workers or processes.
        epoch_seed = int(torch.empty((), dtype=torch.int64).random_(generator=self.generator))
        for batch in self.batches:
            yield [(index, epoch_seed) for index in batch]


def make_train_loader(
    dataset: TrainDataset,
    protocol: Protocol,
    device: torch.device,
    generator: torch.Generator,
    world: World | None = None,
    *,
    seed: int = 0,
) -> DataLoader:
    """The training loader: shuffled by ``generator``, batches of the protocol's size.

    Batches come from a ``ShardedBatchSampler`` (on several processes each rank gets its
    part of every global batch), keyed by a per-epoch seed from which each sample draws
    its augmentation; workers persist across epochs and memory is pinned on CUDA. All the
    randomness follows from ``generator``, which checkpoints restore.
    """
    world = world or World()
    workers = protocol.num_workers
    batches = ShardedBatchSampler(len(dataset), protocol.batch_size, world, generator)
    return DataLoader(
        _Keyed(dataset),
        batch_sampler=_KeyedBatches(batches, generator),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        worker_init_fn=worker_init,
        # The loader draws its workers' base seed from its own generator, not the one that
        # shuffles, so the shuffle does not depend on when workers start.
        generator=torch.Generator().manual_seed(seed),
    )


def worker_init(worker_id: int) -> None:
    """In each DataLoader worker: leave Ctrl-C to the main process, and reseed the augmentation.

    Each worker holds a copy of the transform; reseeded from the worker's own seed (the
    loader's base seed plus its id), workers stop repeating each other's draws, and the
    draws follow from the loader's generator, which checkpoints restore.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    info = torch.utils.data.get_worker_info()
    augment = getattr(info.dataset, "augment", None) if info is not None else None
    if hasattr(augment, "set_random_seed"):
        augment.set_random_seed(info.seed % 2**32)
