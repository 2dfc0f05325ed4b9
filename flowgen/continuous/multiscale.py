"""FFJORD's multiscale image architecture (ODENVP; Grathwohl et al. 2019, RNODE 2020).

For an image x [B, C, H, W] and ``num_scales`` = L, scale i < L - 1 applies ``num_blocks``
CNF blocks at the current shape, a squeeze (C, H, W) -> (4C, H/2, W/2), ``num_blocks``
blocks at the squeezed shape, then factors out half of the channels (they go to the
latent directly); the last scale applies ``num_blocks`` blocks only. The latent is the
concatenation of the flattened factored-out parts and the last scale's output, z [B, D],
and the log-determinant is the sum of the blocks' (squeezes and splits are permutations).
MNIST 28x28 with L = 3 and 2 blocks per stack gives FFJORD's 10 CNF blocks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from flowgen.flows.base import Bijection, Chain
from flowgen.flows.squeeze import Squeeze


def max_scales(height: int, width: int) -> int:
    """FFJORD's default number of scales: halve the sides while both are >= 4, counting the
    halvings (28 -> 3 scales, 32 -> 4, 8 -> 2)."""
    scales = 0
    while height >= 4 and width >= 4:
        height, width, scales = height // 2, width // 2, scales + 1
    return max(scales, 1)


class MultiscaleCNF(Bijection):
    """x [B, C, H, W] -> z [B, C*H*W] (see the module docstring).

    ``make_block(shape)`` builds one CNF block for images of ``shape`` = (C, H, W).
    """

    def __init__(self, data_shape: tuple[int, int, int], num_scales: int, num_blocks: int,
                 make_block: Callable[[tuple[int, int, int]], Bijection]) -> None:
        super().__init__()
        c, h, w = data_shape
        if num_scales < 1 or num_blocks < 1:
            raise ValueError(f"num_scales and num_blocks must be >= 1, got {num_scales}, {num_blocks}")
        factor = 2 ** (num_scales - 1)
        if h % factor or w % factor:
            raise ValueError(f"{num_scales} scales need height and width divisible by {factor}, got {h}x{w}")
        self.data_shape = (c, h, w)
        stages: list[Bijection] = []
        self.factored_shapes: list[tuple[int, int, int]] = []
        for scale in range(num_scales):
            layers = [make_block((c, h, w)) for _ in range(num_blocks)]
            if scale < num_scales - 1:
                c, h, w = 4 * c, h // 2, w // 2
                layers += [Squeeze(), *(make_block((c, h, w)) for _ in range(num_blocks))]
                c //= 2
                self.factored_shapes.append((c, h, w))
            stages.append(Chain(layers))
        self.stages = nn.ModuleList(stages)
        self.final_shape = (c, h, w)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = x.new_zeros(x.shape[0])
        parts = []
        for scale, stage in enumerate(self.stages):
            x, ld = stage(x)
            logdet = logdet + ld
            if scale < len(self.stages) - 1:
                half = x.shape[1] // 2
                parts.append(x[:, :half].reshape(x.shape[0], -1))
                x = x[:, half:]
        parts.append(x.reshape(x.shape[0], -1))
        return torch.cat(parts, dim=1), logdet

    def inverse(self, z: Tensor) -> Tensor:
        sizes = [c * h * w for c, h, w in (*self.factored_shapes, self.final_shape)]
        parts = list(z.split(sizes, dim=1))
        x = parts[-1].reshape(z.shape[0], *self.final_shape)
        for scale in range(len(self.stages) - 1, -1, -1):
            if scale < len(self.stages) - 1:
                factored = parts[scale].reshape(z.shape[0], *self.factored_shapes[scale])
                x = torch.cat([factored, x], dim=1)
            x = self.stages[scale].inverse(x)
        return x
