"""Base LightningDataModule shared by every dataset, and the seeded split helper.

Batches are ``(x, y)``:
  * images: ``x`` uint8 [B, C, H, W] integer levels in {0, ..., K-1}, ``y`` int64 labels [B];
  * toy 2-D: ``x`` float32 [B, 2] points, ``y`` int64 zeros [B].
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from flowgen.data.samplers import EpochShuffleSampler, EvalShardSampler


class FlowDataModule(pl.LightningDataModule):
    """Loaders, seeded shuffling and the data spec; subclasses implement ``build_datasets``.

    Subclasses set ``data_shape``, ``num_levels``, ``is_image`` and ``name`` in ``__init__``
    (models are built from them before ``setup``).
    """

    data_shape: tuple[int, ...]
    num_levels: int | None
    is_image: bool
    name: str

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        split_seed: int = 0,
        shuffle_seed: int = 0,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.split_seed = split_seed
        self.shuffle_seed = shuffle_seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def spec(self) -> dict[str, Any]:
        """Plain-python description of the data, stored in checkpoints."""
        return {
            "name": self.name,
            "shape": list(self.data_shape),
            "num_levels": self.num_levels,
            "is_image": self.is_image,
        }

    def build_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        """Return the (train, val, test) datasets."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Build the three datasets once; later calls are no-ops."""
        if self.train_set is None:
            self.train_set, self.val_set, self.test_set = self.build_datasets()

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader:
        """Train: shuffled with ``EpochShuffleSampler(shuffle_seed)`` on one process, or
        ``shuffle=True`` under DDP so Lightning injects its DistributedSampler (which pads to equal
        shares: fine for training). Eval: in order; under DDP each rank gets whole batches from
        ``EvalShardSampler``, unpadded, so the aggregated metrics equal the single-process ones."""
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before requesting dataloaders")
        options: dict[str, Any] = {
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.persistent_workers and self.num_workers > 0,
        }
        distributed = self.trainer is not None and self.trainer.world_size > 1
        if not train:
            if not distributed:
                return DataLoader(dataset, batch_size=self.eval_batch_size, shuffle=False, **options)
            rank, world = self.trainer.global_rank, self.trainer.world_size
            shard = EvalShardSampler(len(dataset), self.eval_batch_size, rank, world)
            return DataLoader(dataset, batch_size=shard.batch_size, sampler=shard, **options)
        if distributed:
            return DataLoader(dataset, batch_size=self.batch_size, shuffle=True, drop_last=False, **options)
        sampler = EpochShuffleSampler(len(dataset), self.shuffle_seed)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, drop_last=False, **options)


def split_indices(n: int, n_val: int, n_test: int, seed: int) -> tuple[list[int], list[int], list[int]]:
    """Seeded random partition of ``range(n)`` into (train, val, test) with the given sizes."""
    if n_val < 0 or n_test < 0 or n_val + n_test >= n:
        raise ValueError(f"cannot split {n} items into val={n_val}, test={n_test} and a non-empty train set")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return perm[n_val + n_test :], perm[:n_val], perm[n_val : n_val + n_test]


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise ``ValueError`` unless both fractions lie in [0, 1) and sum to < 1."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must lie in [0, 1) and sum to < 1"
        )


def fraction_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """(n_val, n_test): the fractions of ``n``, rounded to whole items."""
    check_fractions(val_fraction, test_fraction)
    return round(val_fraction * n), round(test_fraction * n)
