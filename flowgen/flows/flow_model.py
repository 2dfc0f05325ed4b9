"""A discrete normalizing flow: preprocessing, an invertible transform and a prior.

With y the (dequantised) data, x = pre(y), z = f(x):

    log p(y) = log p_Z(z) + log|det dz/dx| + log|det dx/dy|     (nats, Tensor[B]).

``forward(y) -> (z, logdet)`` returns the latent and the total log-determinant, the
preprocessing included; ``inverse(z) -> y``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowgen.flows.base import Bijection


class FlowModel(nn.Module):
    """Density on data space with exact likelihood and one-pass sampling."""

    def __init__(self, preprocess: Bijection, transform: Bijection, prior: nn.Module, data_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.transform = transform
        self.prior = prior
        self.data_shape = tuple(data_shape)

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        x, logdet_pre = self.preprocess(y)
        z, logdet = self.transform(x)
        return z, logdet_pre + logdet

    def inverse(self, z: Tensor) -> Tensor:
        return self.preprocess.inverse(self.transform.inverse(z))

    def log_prob(self, y: Tensor) -> Tensor:
        """log p(y) in nats, Tensor[B]."""
        z, logdet = self(y)
        return self.prior.log_prob(z) + logdet

    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent z (without batch), found by a forward pass of a dummy input."""
        device = next(self.parameters()).device
        with torch.no_grad():
            z, _ = self(torch.full((1, *self.data_shape), 0.5, device=device))
        return tuple(z.shape[1:])

    @torch.no_grad()
    def sample(self, num_samples: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """num_samples draws of y [n, *data_shape]; temperature scales the prior's std."""
        device = next(self.parameters()).device
        z = self.prior.sample((num_samples, *self.latent_shape()), temperature, generator, device)
        return self.inverse(z)
