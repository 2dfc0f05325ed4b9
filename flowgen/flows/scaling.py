"""Elementwise diagonal scaling z = x * exp(s), log|det| = sum_i s_i (NICE's final layer)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowgen.flows.base import Bijection


class DiagonalScale(Bijection):
    """Learned per-dimension log-scale s of shape ``shape`` (x's shape without batch)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(shape))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x * torch.exp(self.log_scale), self.log_scale.sum().expand(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        return z * torch.exp(-self.log_scale)
