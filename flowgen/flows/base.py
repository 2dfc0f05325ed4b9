"""The bijection interface shared by every discrete flow layer.

A layer maps x -> z and returns the per-sample log-determinant
logdet = log|det dz/dx|, a Tensor[B] in nats; ``inverse`` maps z back to x.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn


class Bijection(nn.Module):
    """Invertible map with a tractable log|det J|. Subclasses implement both directions."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def inverse(self, z: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class Chain(Bijection):
    """Composition f_n o ... o f_1; log-dets add up."""

    def __init__(self, layers: Iterable[Bijection]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: Tensor) -> Tensor:
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z


class Flatten(Bijection):
    """[B, *shape] -> [B, prod(shape)]; volume preserving (logdet 0)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.reshape(x.shape[0], -1), x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        return z.reshape(z.shape[0], *self.shape)


def sum_except_batch(x: Tensor) -> Tensor:
    """Sum over every dimension but the first: [B, ...] -> [B]."""
    return x.reshape(x.shape[0], -1).sum(dim=1)

