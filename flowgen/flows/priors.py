"""Base distributions of discrete flows, with temperature for sampling.

``log_prob(z)`` sums over every non-batch dimension and returns Tensor[B] in nats.
``sample`` scales the standard deviation by ``temperature`` (T = 1: the prior itself);
likelihoods are always at T = 1 (design.md section 3).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowgen.data import toy2d_densities
from flowgen.flows.base import sum_except_batch

PRIORS = ("gaussian", "logistic", *toy2d_densities.HAS_TRUE_DENSITY)


class StandardNormal(nn.Module):
    """N(0, I): log p(z) = -0.5 sum(z^2) - D/2 ln(2 pi)."""

    def log_prob(self, z: Tensor) -> Tensor:
        return sum_except_batch(-0.5 * z.pow(2) - 0.5 * math.log(2.0 * math.pi))

    def sample(self, shape: tuple[int, ...], temperature: float = 1.0, generator=None, device=None) -> Tensor:
        return temperature * torch.randn(shape, generator=generator, device=device)


class StandardLogistic(nn.Module):
    """Logistic(0, 1) per dimension (NICE): log p(z) = -softplus(z) - softplus(-z)."""

    def log_prob(self, z: Tensor) -> Tensor:
        return sum_except_batch(-F.softplus(z) - F.softplus(-z))

    def sample(self, shape: tuple[int, ...], temperature: float = 1.0, generator=None, device=None) -> Tensor:
        u = torch.rand(shape, generator=generator, device=device).clamp_(1e-7, 1.0 - 1e-7)
        return temperature * (torch.log(u) - torch.log1p(-u))


class Toy2dPrior(nn.Module):
    """A 2-D toy density with a closed form (e.g. 8gaussians) as source distribution
    (OT-CFM's 8gaussians -> moons benchmark). Temperature scales samples about the origin."""

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in toy2d_densities.HAS_TRUE_DENSITY:
            raise ValueError(f"a prior needs a closed-form density: one of {toy2d_densities.HAS_TRUE_DENSITY}, got {name!r}")
        self.name = name

    def log_prob(self, z: Tensor) -> Tensor:
        return toy2d_densities.true_log_prob(self.name, z)

    def sample(self, shape: tuple[int, ...], temperature: float = 1.0, generator=None, device=None) -> Tensor:
        if tuple(shape[1:]) != (2,):
            raise ValueError(f"the {self.name} prior is 2-D, asked for samples of shape {tuple(shape)}")
        cpu_generator = generator if generator is None or generator.device.type == "cpu" else None
        return temperature * toy2d_densities.sample(self.name, shape[0], cpu_generator).to(device)


def build_prior(name: str) -> nn.Module:
    """One of ``PRIORS`` by name."""
    if name == "gaussian":
        return StandardNormal()
    if name == "logistic":
        return StandardLogistic()
    if name in toy2d_densities.HAS_TRUE_DENSITY:
        return Toy2dPrior(name)
    raise ValueError(f"unknown prior {name!r}; choose one of {PRIORS}")
