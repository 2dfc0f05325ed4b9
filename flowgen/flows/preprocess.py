"""Bijections from dequantised data y in [0, 1]^D to the space the flow works in.

Their log-determinants are part of the model's log p(y), so bits/dim are always reported
on [0, 1]^D whatever the preprocessing (design.md section 3).

- ``identity``: x = y (toy 2-D data, or flows on the unit cube).
- ``center``:   x = 2y - 1 in [-1, 1];                 log|det| = D ln 2.
- ``logit``:    s = alpha + (1 - 2 alpha) y, x = logit(s);
                log|det| = sum_i [ln(1 - 2 alpha) - ln s_i - ln(1 - s_i)] (RealNVP, alpha = 0.05).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from flowgen.flows.base import Bijection, sum_except_batch

PREPROCESSING = ("identity", "center", "logit")


class Identity(Bijection):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x, x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        return z


class Center(Bijection):
    """y in [0, 1] -> 2y - 1 in [-1, 1]."""

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        num_dims = y[0].numel()
        return 2.0 * y - 1.0, y.new_full((y.shape[0],), num_dims * math.log(2.0))

    def inverse(self, x: Tensor) -> Tensor:
        return (x + 1.0) / 2.0


class Logit(Bijection):
    """y in [0, 1] -> logit(alpha + (1 - 2 alpha) y), keeping away from the logit's poles."""

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        if not 0.0 <= alpha < 0.5:
            raise ValueError(f"logit alpha must be in [0, 0.5), got {alpha}")
        self.alpha = alpha

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        s = self.alpha + (1.0 - 2.0 * self.alpha) * y
        x = torch.log(s) - torch.log1p(-s)
        # d x / d y = (1 - 2 alpha) / (s (1 - s)); -log s - log(1-s) = softplus(x) + softplus(-x)
        logdet = math.log(1.0 - 2.0 * self.alpha) + F.softplus(x) + F.softplus(-x)
        return x, sum_except_batch(logdet)

    def inverse(self, x: Tensor) -> Tensor:
        return (torch.sigmoid(x) - self.alpha) / (1.0 - 2.0 * self.alpha)


def build_preprocess(name: str, alpha: float = 0.05) -> Bijection:
    """One of ``PREPROCESSING`` by name."""
    if name == "identity":
        return Identity()
    if name == "center":
        return Center()
    if name == "logit":
        return Logit(alpha)
    raise ValueError(f"unknown preprocess {name!r}; choose one of {PREPROCESSING}")
