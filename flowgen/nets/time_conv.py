"""Time-conditioned convolutional vector field for images (FFJORD's ``concat`` ODE net).

Each layer sees the time as an extra constant input channel,

    h_{l+1} = act(Conv3x3([h_l, t 1])),        v(t, x) = Conv3x3([h_L, t 1]),

with ``hidden_channels`` (FFJORD/RNODE on MNIST: 64-64-64, softplus). Spatial size is kept
(stride 1, padding 1). The last convolution starts at zero, so v = 0 (identity flow).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from flowgen.continuous.vector_field import VectorField
from flowgen.nets.mlp import activation


class ConcatConv2d(nn.Module):
    """Conv2d over the channels of x [B, C, H, W] plus one channel filled with t."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels + 1, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
        tt = t.expand(x.shape[0], 1, x.shape[2], x.shape[3])
        return self.conv(torch.cat([x, tt], dim=1))


class TimeConvNet(VectorField):
    """v(t, x) for x [B, channels, H, W] (t: 0-dim or [B])."""

    def __init__(self, channels: int, hidden_channels: Sequence[int] = (64, 64, 64), activation_name: str = "softplus",
                 zero_init_last: bool = True) -> None:
        super().__init__()
        widths = [channels, *hidden_channels, channels]
        self.layers = nn.ModuleList(ConcatConv2d(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activations = nn.ModuleList(activation(activation_name) for _ in hidden_channels)
        if zero_init_last:
            nn.init.zeros_(self.layers[-1].conv.weight)
            nn.init.zeros_(self.layers[-1].conv.bias)

    def forward(self, t: Tensor, x: Tensor, **cond: Any) -> Tensor:
        if cond:
            raise TypeError(f"TimeConvNet takes no conditioning, got {sorted(cond)}")
        h = x
        for layer, act in zip(self.layers[:-1], self.activations):
            h = act(layer(t, h))
        return self.layers[-1](t, h)
