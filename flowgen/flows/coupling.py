"""Coupling layers: split x by a fixed binary mask, transform one part given the other.

With mask m (1 = conditioning part, kept), the additive coupling of NICE is

    z = x + (1 - m) * t(m * x),    log|det dz/dx| = 0,

and its inverse x = z - (1 - m) * t(m * z). The mask works for any shape, so the same layer
serves flattened vectors (NICE) and image tensors with checkerboard or channel masks.
"""

from __future__ import annotations

from torch import Tensor, nn

from flowgen.flows.base import Bijection


class AdditiveCoupling(Bijection):
    """Volume-preserving coupling z = x + (1 - m) t(m x); ``net`` maps x's shape to itself."""

    def __init__(self, mask: Tensor, net: nn.Module) -> None:
        super().__init__()
        self.register_buffer("mask", mask.float())
        self.net = net

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shift = self.net(x * self.mask)
        return x + (1.0 - self.mask) * shift, x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        shift = self.net(z * self.mask)
        return z - (1.0 - self.mask) * shift
