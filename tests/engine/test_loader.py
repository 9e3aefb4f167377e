"""The training loader (``harness.engine.loader``): without augmentation the batches of a
plain shuffled DataLoader, with it draws that depend on neither the workers nor the ranks,
all following from one generator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from harness import protocol as protocols
from harness.data.datasets import TrainDataset
from harness.data.layout import list_images, split
from harness.data.sources import synthetic_dataset
from harness.engine.distributed import World
from harness.engine.loader import global_batch, make_train_loader


def _tiny_images() -> list[Path]:
    root = synthetic_dataset(5, 64, 0)
    train, _ = split(list_images(root, "train"), 5, 0)
    return train


def _batches(loader: DataLoader, epochs: int) -> list[torch.Tensor]:
    return [inputs.clone() for _ in range(epochs) for inputs, _ in loader]


def test_loader_draws_the_batches_of_a_plain_shuffled_loader() -> None:
    # Without augmentation the harness's loader trains on exactly the batches (and leaves
    # the generator exactly where) a DataLoader(shuffle=True) would: results published
    # before it existed stay reproducible.
    proto = protocols.load("tiny").derive(["batch_size=3"])
    dataset = TrainDataset(_tiny_images(), proto.resolution)
    plain_gen, ours_gen = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    plain = DataLoader(dataset, batch_size=3, shuffle=True, generator=plain_gen)
    ours = make_train_loader(dataset, proto, torch.device("cpu"), ours_gen, seed=7)
    a, b = _batches(plain, 3), _batches(ours, 3)
    assert len(a) == len(b) == 3 * 3  # 8 images: batches of 3, 3, 2
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert torch.equal(plain_gen.get_state(), ours_gen.get_state())


@pytest.mark.parametrize("workers", [1, 2])
def test_augmented_batches_do_not_depend_on_loader_workers(workers: int) -> None:
    from harness.components.registry import Registry

    registry = Registry.load()
    proto = protocols.load("tiny")
    images = _tiny_images()

    def draw(num_workers: int) -> list[torch.Tensor]:
        augment = registry.get("augmentations", "basic").build(image_size=proto.resolution)
        dataset = TrainDataset(images, proto.resolution, augment)
        p = proto.derive([f"num_workers={num_workers}"]) if num_workers else proto
        gen = torch.Generator().manual_seed(3)
        return _batches(make_train_loader(dataset, p, torch.device("cpu"), gen, seed=3), 2)

    alone, with_workers = draw(0), draw(workers)
    assert all(torch.equal(x, y) for x, y in zip(alone, with_workers, strict=True))
    # and the augmentation really draws: two epochs of the same images differ
    assert not torch.equal(alone[0].sum(0), alone[2].sum(0)) or not torch.equal(alone[0], alone[2])


def test_global_batch_counts_the_short_last_batch() -> None:
    assert [global_batch(8, 3, done) for done in (1, 2, 3)] == [3, 3, 2]
    assert [global_batch(6, 3, done) for done in (1, 2)] == [3, 3]
    assert global_batch(2, 4, 1) == 2


def test_every_rank_keys_its_part_with_the_epoch_seed_one_process_draws() -> None:
    # A sample's augmentation is drawn from (epoch seed, index): two ranks (no process group
    # is needed to build their loaders) split each global batch and key it exactly as one
    # process keys the whole, so the images trained on are the same draw for draw.
    proto = protocols.load("tiny").derive(["batch_size=4"])
    dataset = TrainDataset(_tiny_images(), proto.resolution)  # 8 images: 2 batches of 4

    def keys(world: World) -> list[list[tuple[int, int]]]:
        generator = torch.Generator().manual_seed(5)
        loader = make_train_loader(dataset, proto, torch.device("cpu"), generator, world, seed=5)
        return [batch for _ in range(2) for batch in loader.batch_sampler]  # two epochs

    alone = keys(World())
    first, second = (keys(World(rank=r, size=2, local_rank=r)) for r in range(2))
    assert len(alone) == len(first) == len(second) == 4
    assert all(
        a == f + s and len(f) == len(s) == 2 for a, f, s in zip(alone, first, second, strict=True)
    )
    seeds = [{seed for _, seed in batch} for batch in alone]
    assert all(len(s) == 1 for s in seeds)
    assert seeds[0] == seeds[1] != seeds[2] == seeds[3]  # one seed an epoch
