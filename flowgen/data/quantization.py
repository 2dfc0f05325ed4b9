"""Uniform dequantisation of integer levels and its inverse (pure torch).

Images are integer levels k in {0, ..., K-1}. Dequantisation maps them to the unit cube,

    y = (k + u) / K,   u ~ U[0, 1)^D,   y in [0, 1]^D,

so that a density p on [0, 1]^D defines a lower bound on the discrete likelihood
log P(k) >= E_u[log p(y)] - D ln K (Theis et al. 2016).
"""

from __future__ import annotations

import torch
from torch import Tensor


def dequantize(k: Tensor, num_levels: int, generator: torch.Generator | None = None) -> Tensor:
    """Integer levels k [B, ...] -> y = (k + u) / K in [0, 1), float32, u uniform per entry."""
    u = torch.rand(k.shape, generator=generator, device=k.device, dtype=torch.float32)
    return (k.to(torch.float32) + u) / num_levels


def quantize(y: Tensor, num_levels: int) -> Tensor:
    """y in [0, 1]^D -> levels floor(y K) clamped to {0, ..., K-1}, as uint8 (int64 if K > 256).

    Values outside [0, 1] are clamped, never wrapped.
    """
    k = torch.floor(y.detach().float().clamp(0.0, 1.0) * num_levels).clamp_(max=num_levels - 1)
    return k.to(torch.uint8 if num_levels <= 256 else torch.int64)
