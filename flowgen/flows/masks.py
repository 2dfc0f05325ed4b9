"""Binary masks for coupling layers (1 = the conditioning part that passes unchanged)."""

from __future__ import annotations

import torch
from torch import Tensor


def alternating_mask(num_dims: int, parity: int) -> Tensor:
    """[D] mask selecting the even (parity 0) or odd (parity 1) entries of a flat vector."""
    return (torch.arange(num_dims) % 2 == parity).float()


def checkerboard_mask(height: int, width: int, parity: int) -> Tensor:
    """[1, 1, H, W] mask, 1 where (i + j) % 2 == parity (RealNVP's spatial checkerboard).

    Broadcasts over batch and channels, so every channel is split the same way.
    """
    i = torch.arange(height).reshape(-1, 1)
    j = torch.arange(width).reshape(1, -1)
    return ((i + j) % 2 == parity).float().reshape(1, 1, height, width)


def channel_mask(num_channels: int, parity: int) -> Tensor:
    """[1, C, 1, 1] mask selecting the first (parity 0) or second (parity 1) half of the channels."""
    if num_channels < 2:
        raise ValueError(f"a channel mask needs at least 2 channels, got {num_channels}")
    first = torch.arange(num_channels) < num_channels // 2
    return (first if parity == 0 else ~first).float().reshape(1, num_channels, 1, 1)
