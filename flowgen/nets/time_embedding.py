"""Sinusoidal embedding of the flow time t in [0, 1] (Vaswani et al.; ADM)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10000.0, scale: float = 1000.0) -> Tensor:
    """t [B] -> [B, dim]: cos/sin of (scale t) at geometrically spaced frequencies.

    ``scale`` maps t in [0, 1] to the [0, 1000] range the frequencies were designed for.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = scale * t.float().reshape(-1, 1) * freqs.reshape(1, -1)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return torch.nn.functional.pad(emb, (0, dim % 2))
