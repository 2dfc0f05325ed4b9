"""Seeded per-epoch shuffling (reproducible across restarts from a checkpoint) and the
unpadded evaluation sharding used under DDP."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import torch
from torch.utils.data import DistributedSampler, Sampler

log = logging.getLogger(__name__)


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


class EvalShardSampler(DistributedSampler):
    """Exact evaluation under DDP: rank r of W gets the whole eval batches r, r + W, r + 2W, ...

    The in-order eval set is cut into batches of ``batch_size`` as on one process; each batch
    goes to exactly one rank, nothing is padded or repeated, so summed metrics (bits/dim as
    nats and dims) all-reduce to the single-process value. Batch b of the single-process loop
    is local batch ``b // W`` of rank ``b % W`` (``global_batch_index`` inverts it), which keys
    the evaluation noise of that batch. A set too small to give every rank a batch is cut into
    batches of floor(n / W) instead (``self.batch_size``, logged), so no rank idles through the
    epoch's collective operations. A ``DistributedSampler``, so Lightning keeps it.
    """

    def __init__(self, num_items: int, batch_size: int, rank: int, world_size: int) -> None:
        if num_items < world_size:
            raise ValueError(f"{num_items} evaluation items cannot give each of {world_size} ranks a batch; "
                             "evaluate on fewer processes (trainer.devices)")
        if math.ceil(num_items / batch_size) < world_size:
            batch_size = num_items // world_size
            if rank == 0:
                log.warning("%d evaluation items: eval batches of %d so that each of %d ranks gets one "
                            "(a 1-process run matches with data.eval_batch_size=%d)", num_items, batch_size,
                            world_size, batch_size)
        self.num_items = num_items
        self.batch_size = batch_size
        self.rank = rank
        self.num_replicas = world_size
        self.shuffle = False
        self.drop_last = False
        self.epoch = 0
        self.batches = range(rank, math.ceil(num_items / batch_size), world_size)

    def __iter__(self) -> Iterator[int]:
        for b in self.batches:
            yield from range(b * self.batch_size, min((b + 1) * self.batch_size, self.num_items))

    def __len__(self) -> int:
        return sum(min(self.batch_size, self.num_items - b * self.batch_size) for b in self.batches)


def global_batch_index(local_index: int, rank: int, world_size: int) -> int:
    """Index in the single-process eval loop of local batch ``local_index`` on ``rank`` (EvalShardSampler)."""
    return local_index * world_size + rank
