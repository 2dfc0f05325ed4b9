"""Conditional probability paths between a source sample x0 (t = 0) and data x1 (t = 1).

Affine paths x_t = alpha_t x1 + sigma_t x0 with target velocity u_t = d/dt x_t
= alpha'_t x1 + sigma'_t x0 (design.md section 3):

- ``CondOTPath`` (Lipman et al. 2023): alpha_t = t, sigma_t = 1 - (1 - sigma_min) t.
- ``ICFMPath`` (Tong et al. 2024): alpha_t = t, sigma_t = 1 - t, plus independent noise
  sigma * eps (eps ~ N(0, I)), which does not change u_t = x1 - x0. With minibatch OT
  pairing of (x0, x1) this is OT-CFM (see ``coupling.py``).
- ``VPPath`` (trigonometric, Albergo & Vanden-Eijnden; Tong et al.):
  alpha_t = sin(pi t / 2), sigma_t = cos(pi t / 2).

Every path takes t of shape [B] and broadcasts it over the other dimensions of x.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _expand(t: Tensor, x: Tensor) -> Tensor:
    """[B] -> [B, 1, ..., 1] matching x's number of dimensions."""
    return t.reshape(-1, *([1] * (x.dim() - 1)))


class AffinePath:
    """x_t = alpha(t) x1 + sigma(t) x0 (+ noise_std * eps); u_t = alpha'(t) x1 + sigma'(t) x0."""

    noise_std: float = 0.0

    def alpha(self, t: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def sigma(self, t: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def d_alpha(self, t: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def d_sigma(self, t: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor, noise: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(x_t, u_t) for pairs (x0, x1) [B, ...] at times t [B]; ``noise`` ~ N(0, I) like x0."""
        te = _expand(t, x1)
        xt = self.alpha(te) * x1 + self.sigma(te) * x0
        if self.noise_std > 0:
            if noise is None:
                raise ValueError(f"{type(self).__name__} with noise_std > 0 needs a noise tensor")
            xt = xt + self.noise_std * noise
        return xt, self.target(x0, x1, te)

    def target(self, x0: Tensor, x1: Tensor, te: Tensor) -> Tensor:
        """u_t = alpha'(t) x1 + sigma'(t) x0, with ``te`` the times expanded like x."""
        return self.d_alpha(te) * x1 + self.d_sigma(te) * x0


class CondOTPath(AffinePath):
    """Lipman et al.'s optimal-transport conditional path with minimum std ``sigma_min``."""

    def __init__(self, sigma_min: float = 0.0) -> None:
        self.sigma_min = sigma_min

    def alpha(self, t: Tensor) -> Tensor:
        return t

    def sigma(self, t: Tensor) -> Tensor:
        return 1.0 - (1.0 - self.sigma_min) * t

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -(1.0 - self.sigma_min))


class ICFMPath(AffinePath):
    """Straight line between independent (or OT-paired) x0 and x1, with Gaussian width ``sigma``."""

    def __init__(self, sigma: float = 0.0) -> None:
        self.noise_std = sigma

    def alpha(self, t: Tensor) -> Tensor:
        return t

    def sigma(self, t: Tensor) -> Tensor:
        return 1.0 - t

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -torch.ones_like(t)

    def target(self, x0: Tensor, x1: Tensor, te: Tensor) -> Tensor:
        """u_t = x1 - x0 (alpha' = 1, sigma' = -1: the same floats, one operation)."""
        return x1 - x0


class VPPath(AffinePath):
    """Trigonometric variance-preserving path: alpha_t^2 + sigma_t^2 = 1."""

    def alpha(self, t: Tensor) -> Tensor:
        return torch.sin(0.5 * math.pi * t)

    def sigma(self, t: Tensor) -> Tensor:
        return torch.cos(0.5 * math.pi * t)

    def d_alpha(self, t: Tensor) -> Tensor:
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)


PATHS = {"condot": CondOTPath, "icfm": ICFMPath, "vp": VPPath}


def build_path(name: str, **kwargs: float) -> AffinePath:
    """A path by name (``PATHS``), e.g. ``build_path("condot", sigma_min=1e-4)``."""
    if name not in PATHS:
        raise ValueError(f"unknown probability path {name!r}; choose one of {sorted(PATHS)}")
    return PATHS[name](**kwargs)
