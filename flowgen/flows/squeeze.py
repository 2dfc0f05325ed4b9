"""Squeeze (space-to-depth): [B, C, H, W] -> [B, 4C, H/2, W/2], a permutation (log|det| = 0).

Each 2x2 spatial block becomes 4 channels: out[:, c*4 + 2i + j, h, w] = x[:, c, 2h + i, 2w + j].

RealNVP's *alternate* order groups the four block positions instead: channel p*C + c holds
position p of input channel c, with p = 0, 1, 2, 3 for (i, j) = (0, 0), (1, 1), (0, 1), (1, 0).
The first half of the channels is then one colour of a checkerboard and the second half the
other, so a channel mask after this squeeze continues the checkerboard split before it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowgen.flows.base import Bijection

# position (i, j) of the 2x2 block -> group p in the alternate order; as standard index 2i + j
_ALTERNATE_ORDER = (0, 3, 1, 2)  # p = 0: (0,0) -> 0, p = 1: (1,1) -> 3, p = 2: (0,1) -> 1, p = 3: (1,0) -> 2


def squeeze(x: Tensor) -> Tensor:
    """[B, C, H, W] -> [B, 4C, H/2, W/2] (H, W even)."""
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"squeeze needs even height and width, got {h}x{w}")
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def unsqueeze(z: Tensor) -> Tensor:
    """Inverse of ``squeeze``: [B, 4C, H, W] -> [B, C, 2H, 2W]."""
    b, c, h, w = z.shape
    z = z.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return z.reshape(b, c // 4, h * 2, w * 2)


def _alternate_index(num_channels: int, device: torch.device) -> Tensor:
    """Standard-squeeze channel feeding alternate channel p*C + c: c*4 + order[p]."""
    order = torch.tensor(_ALTERNATE_ORDER, device=device)
    c = torch.arange(num_channels, device=device)
    return (c.reshape(1, -1) * 4 + order.reshape(-1, 1)).reshape(-1)


def alternate_squeeze(x: Tensor) -> Tensor:
    """RealNVP's squeeze order: [B, C, H, W] -> [B, 4C, H/2, W/2], grouped by block position."""
    return squeeze(x)[:, _alternate_index(x.shape[1], x.device)]


def alternate_unsqueeze(z: Tensor) -> Tensor:
    """Inverse of ``alternate_squeeze``."""
    index = _alternate_index(z.shape[1] // 4, z.device)
    return unsqueeze(z[:, torch.argsort(index)])


class Squeeze(Bijection):
    """``squeeze`` (or ``alternate_squeeze`` with ``alternate=True``) as a flow layer."""

    def __init__(self, alternate: bool = False) -> None:
        super().__init__()
        self.alternate = alternate

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = alternate_squeeze(x) if self.alternate else squeeze(x)
        return z, x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        return alternate_unsqueeze(z) if self.alternate else unsqueeze(z)
