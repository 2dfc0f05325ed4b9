"""Bits per dimension (design.md section 3).

For a density p on the dequantised space y in [0, 1]^D (nats),

    bpd = (-log p(y) + D ln K) / (D ln 2).

A uniform density on the unit cube (log p = 0) gives exactly log2 K (8.0 for 8-bit data).
With S dequantisation samples the importance-weighted estimate
log p(k) ~= logsumexp_s log p(y_s) - ln S (Ho et al. 2019; q(u) uniform) replaces log p(y);
S = 1 is the usual variational bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torchmetrics import Metric

from flowgen.data.quantization import dequantize


def bits_per_dim(log_prob: Tensor, num_dims: int, num_levels: int) -> Tensor:
    """Per-sample bpd from log p(y) [B] in nats on [0, 1]^D with K levels per dimension."""
    return (-log_prob + num_dims * math.log(num_levels)) / (num_dims * math.log(2.0))


def dequantized_log_prob(
    log_prob_fn: Callable[[Tensor], Tensor],
    k: Tensor,
    num_levels: int,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Estimate of log p(y) [B] (nats) for integer levels k [B, ...] from S dequantisations.

    S = 1 returns log p(y) for one y = (k + u) / K; S > 1 the importance-weighted
    logsumexp_s log p(y_s) - ln S, which is a tighter bound on the discrete likelihood.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    logps = torch.stack([log_prob_fn(dequantize(k, num_levels, generator)) for _ in range(num_samples)])
    return torch.logsumexp(logps, dim=0) - math.log(num_samples)


class BitsPerDim(Metric):
    """Dataset bpd aggregated exactly: sum of -log P(k) in nats over sum of dimensions.

    ``update(log_prob, num_dims, num_levels)`` takes log p(y) [B] in nats; under DDP the two
    sums are all-reduced, so the result equals the single-process value on the same images.
    """

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("nats", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("dims", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, log_prob: Tensor, num_dims: int, num_levels: int) -> None:
        nll = -log_prob.detach().double() + num_dims * math.log(num_levels)
        self.nats += nll.sum()
        self.dims += num_dims * log_prob.numel()

    def compute(self) -> Tensor:
        return (self.nats / (self.dims * math.log(2.0))).float()
