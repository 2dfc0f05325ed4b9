"""Seeded per-epoch shuffling, reproducible across restarts from a checkpoint."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochShuffleSampler(Sampler[int]):
    """Yields a permutation of ``range(n)`` that depends only on ``seed + epoch``.

    Lightning calls ``set_epoch`` at the start of every epoch, so a run resumed at epoch e
    sees exactly the order the uninterrupted run would have seen.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n
