"""Squeeze (space-to-depth): [B, C, H, W] -> [B, 4C, H/2, W/2], a permutation (log|det| = 0).

Each 2x2 spatial block becomes 4 channels: out[:, c*4 + 2i + j, h, w] = x[:, c, 2h + i, 2w + j].
"""

from __future__ import annotations

from torch import Tensor

from flowgen.flows.base import Bijection


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


class Squeeze(Bijection):
    """``squeeze`` as a flow layer."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return squeeze(x), x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        return unsqueeze(z)
