"""RealNVP's coupling network: a residual CNN with weight-normalised convolutions.

    x [B, C_in, H, W] -> WN conv3x3 (C_in -> F)
      -> num_blocks x [ReLU -> WN conv3x3 (F -> F) -> ReLU -> WN conv3x3 (F -> F)] + skip
      -> ReLU -> conv3x3 (F -> C_out, zero-initialised)       [B, C_out, H, W]

Weight normalisation (w = g v / |v|, Salimans & Kingma 2016) replaces RealNVP's batch norm
inside the network, so a sample's output does not depend on the rest of its batch (the coupling
stays a per-sample bijection in train and eval mode alike). The zero-initialised last layer
makes a coupling start as the identity.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm


def wn_conv3x3(in_channels: int, out_channels: int) -> nn.Module:
    return weight_norm(nn.Conv2d(in_channels, out_channels, 3, padding=1))


class ResidualBlock(nn.Module):
    """x + conv(relu(conv(relu(x)))) with weight-normalised 3x3 convolutions."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), wn_conv3x3(features, features), nn.ReLU(), wn_conv3x3(features, features))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResNet(nn.Sequential):
    """in_channels -> out_channels at the same resolution; ``features`` wide, ``num_blocks`` deep."""

    def __init__(
        self, in_channels: int, out_channels: int, features: int = 64, num_blocks: int = 8, zero_init_last: bool = True
    ) -> None:
        last = nn.Conv2d(features, out_channels, 3, padding=1)
        if zero_init_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        super().__init__(
            wn_conv3x3(in_channels, features),
            *[ResidualBlock(features) for _ in range(num_blocks)],
            nn.ReLU(),
            last,
        )
