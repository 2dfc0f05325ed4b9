"""scikit-learn's 8x8 handwritten digits (bundled with scikit-learn, works offline)."""

from __future__ import annotations

from typing import Any

import torch
from sklearn.datasets import load_digits
from torch.utils.data import Dataset, TensorDataset

from flowgen.data.base import FlowDataModule, check_fractions, fraction_sizes, split_indices


class DigitsDataModule(FlowDataModule):
    """1797 grey 8x8 digits; pixel values 0..16 are the levels (K = 17).

    Batches: ``x`` uint8 [B, 1, 8, 8] in {0..16}, ``y`` int64 digit labels [B]. The split is
    fixed by ``split_seed`` (independent of the training seed); train gets the remainder.
    """

    def __init__(self, val_fraction: float = 0.1, test_fraction: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_fractions(val_fraction, test_fraction)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.data_shape = (1, 8, 8)
        self.num_levels = 17
        self.is_image = True
        self.name = "digits"

    def build_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        digits = load_digits()
        x = torch.from_numpy(digits.images).to(torch.uint8).unsqueeze(1)
        y = torch.from_numpy(digits.target).to(torch.int64)
        n_val, n_test = fraction_sizes(len(x), self.val_fraction, self.test_fraction)
        parts = split_indices(len(x), n_val, n_test, self.split_seed)
        train, val, test = (TensorDataset(x[i], y[i]) for i in parts)
        return train, val, test
