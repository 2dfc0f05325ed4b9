"""2-D toy data as a LightningDataModule; the densities themselves live in ``toy2d_densities``.

``sample``, ``true_log_prob``, ``NAMES`` and ``HAS_TRUE_DENSITY`` are re-exported here, so
``flowgen.data.toy2d.sample(name, n, generator)`` works as documented.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset, TensorDataset

from flowgen.data.base import FlowDataModule
from flowgen.data.toy2d_densities import (  # noqa: F401  (re-exported public API)
    CHECKER_AREA,
    CHECKER_SIDE,
    GAUSSIANS_CENTRES,
    GAUSSIANS_RADIUS,
    GAUSSIANS_STD,
    HAS_TRUE_DENSITY,
    NAMES,
    check_name,
    sample,
    true_log_prob,
)


class Toy2dDataModule(FlowDataModule):
    """Fixed train/val/test draws from a 2-D density.

    Batches: ``x`` float32 [B, 2], ``y`` int64 zeros [B]. Split ``k`` (0 train, 1 val, 2 test)
    is drawn with a generator seeded ``3 * split_seed + k``, so splits never share a stream.
    """

    def __init__(
        self,
        name: str = "8gaussians",
        n_train: int = 20000,
        n_val: int = 2000,
        n_test: int = 5000,
        batch_size: int = 256,
        **kwargs: Any,
    ) -> None:
        check_name(name)
        super().__init__(batch_size=batch_size, **kwargs)
        self.sizes = (n_train, n_val, n_test)
        self.data_shape = (2,)
        self.num_levels = None
        self.is_image = False
        self.name = name

    def build_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        train, val, test = (
            self._draw(n, torch.Generator().manual_seed(3 * self.split_seed + k)) for k, n in enumerate(self.sizes)
        )
        return train, val, test

    def _draw(self, n: int, generator: torch.Generator) -> TensorDataset:
        return TensorDataset(sample(self.name, n, generator), torch.zeros(n, dtype=torch.int64))
