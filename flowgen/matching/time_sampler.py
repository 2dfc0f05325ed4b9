"""Distributions of the training time t in [0, 1] for flow matching."""

from __future__ import annotations

import torch
from torch import Tensor

TIME_SAMPLERS = ("uniform", "logit_normal")


def sample_time(
    n: int,
    name: str = "uniform",
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    mean: float = 0.0,
    std: float = 1.0,
) -> Tensor:
    """t [n]: U[0, 1], or logit-normal sigmoid(N(mean, std^2)) (Esser et al. 2024)."""
    if name == "uniform":
        return torch.rand(n, generator=generator, device=device)
    if name == "logit_normal":
        return torch.sigmoid(mean + std * torch.randn(n, generator=generator, device=device))
    raise ValueError(f"unknown time sampler {name!r}; choose one of {TIME_SAMPLERS}")
