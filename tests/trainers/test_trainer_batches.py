"""The run's loaders: the seeded per-epoch order, augmentation as a pure function of (seed, epoch, index), the
worker rule, and a run with loader workers equal to one without."""

from __future__ import annotations

from pathlib import Path

import torch

from afpe.trainers import TrainConfig, build_task, train
from afpe.trainers.batches import MAX_WORKERS, EpochItems, EpochOrder, loader_workers

ECHO_OPTIONS = {"size": 16, "frames": 4, "period": 2, "patch": [2, 8, 8]}


def test_each_epoch_visits_the_seeded_randperm_of_that_epoch() -> None:
    order = EpochOrder(10, seed=3)
    for epoch in (1, 2):
        order.set_epoch(epoch)
        expected = torch.randperm(10, generator=torch.Generator().manual_seed(3 * 100_003 + epoch)).tolist()
        assert list(order) == [(epoch, index) for index in expected]


def test_random_clips_depend_on_seed_epoch_and_index_only(echonet_root: Path) -> None:
    train_set, _ = build_task("echonet", ECHO_OPTIONS, echonet_root).datasets()
    items = EpochItems(train_set, seed=5)
    first = [items[(epoch, 0)][0] for epoch in range(1, 9)]
    torch.manual_seed(1234)  # the global RNG plays no part
    again = [items[(epoch, 0)][0] for epoch in range(1, 9)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert len({tuple(clip.flatten().tolist()) for clip in first}) > 1, "the crop start changes with the epoch"
    other_seed = [EpochItems(train_set, seed=6)[(epoch, 0)][0] for epoch in range(1, 9)]
    assert not all(torch.equal(a, b) for a, b in zip(first, other_seed, strict=True)), "and with the seed"


def test_workers_only_on_cuda_one_per_cpu_but_one() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert loader_workers(cpu, 16) == 0
    assert (loader_workers(cuda, 1), loader_workers(cuda, 4), loader_workers(cuda, 64)) == (0, 3, MAX_WORKERS)


def test_a_run_with_loader_workers_matches_one_without(echonet_root: Path) -> None:
    config = {
        "task": "echonet",
        "task_options": ECHO_OPTIONS,
        "data_root": echonet_root,
        "epochs": 2,
        "batch_size": 2,
        "num_threads": 1,
        "model": {"dim": 16, "depth": 1, "heads": 2},
    }
    alone = train(TrainConfig(**config, loader_workers=0))["history"]
    with_workers = train(TrainConfig(**config, loader_workers=2))["history"]
    assert with_workers == alone
