"""The loaders of a run: one persistent DataLoader per split, built once.

- Order: each epoch visits the training indices in `torch.randperm(n)` order with a generator seeded
  `seed * 100_003 + epoch` (`EpochOrder`, told the epoch before each pass), so a run, its resume and any number
  of loader workers see the same batches.
- Augmentation: the sampler yields (epoch, index) keys; an `AugmentedDataset` draws its training item with a
  generator seeded by (seed, epoch, index) (`EpochItems`), a pure function of the key: the same in every worker
  process and after a resume, independent of the global torch RNG.
- Workers (`loader_workers`): on CUDA, one per CPU of the run but one (the main process feeds the GPU), at most
  `MAX_WORKERS`; none on CPU, where workers would take cores from torch's intra-op threads that train the model
  (in-memory arrays cost microseconds per item); none with a single CPU. Pinned host memory on CUDA.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from afpe.trainers.tasks.base import AugmentedDataset

MAX_WORKERS = 8
ORDER_STRIDE = 100_003


class EpochOrder(Sampler[tuple[int, int]]):
    """Keys (epoch, index) of the training indices 0..n-1 in this epoch's seeded order; `set_epoch` first."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed * ORDER_STRIDE + self.epoch)
        return ((self.epoch, index) for index in torch.randperm(self.n, generator=generator).tolist())


class EpochItems(Dataset):
    """`dataset` addressed by (epoch, index) keys: an `AugmentedDataset` draws item `index` with a numpy
    generator seeded by (seed mod 2^64, epoch, index); any other dataset returns `dataset[index]`."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed % 2**64

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key
        if isinstance(self.dataset, AugmentedDataset):
            return self.dataset.draw(index, np.random.default_rng((self.seed, epoch, index)))
        return self.dataset[index]


def loader_workers(device: torch.device, cpus: int) -> int:
    """Worker processes of a run's loaders (the rule in the module docstring)."""
    return 0 if device.type != "cuda" else max(0, min(cpus - 1, MAX_WORKERS))


def train_loader(
    dataset: Dataset, n: int, batch_size: int, seed: int, workers: int, pin: bool
) -> tuple[DataLoader, EpochOrder]:
    """The run's training loader over the first `n` items of `dataset`, and its sampler (`set_epoch` before each
    pass); workers stay alive across epochs."""
    order = EpochOrder(n, seed)
    loader = DataLoader(
        EpochItems(dataset, seed),
        batch_size=batch_size,
        sampler=order,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=pin,
    )
    return loader, order


def eval_loader(dataset: Dataset, batch_size: int, workers: int, pin: bool) -> DataLoader:
    """The run's validation loader: every item in index order, workers alive across epochs."""
    return DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, persistent_workers=workers > 0, pin_memory=pin
    )
