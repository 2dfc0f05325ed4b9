"""Classic 2-D densities of the flow literature (FFJORD's toy_data.py), pure torch, no Lightning.

``sample(name, n, generator)`` draws float32 points [n, 2]; every random number comes from
``generator``, so a seeded generator reproduces the points exactly. The same function serves
as a source distribution for flow matching. ``true_log_prob`` gives the exact log density in
nats for the names in ``HAS_TRUE_DENSITY``.

Unlike FFJORD (which uses sklearn and fixed per-component counts), points are i.i.d.: the
component (moon, circle, ring, arm, spiral) is drawn at random per point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
import torch
from torch import Tensor

# 8gaussians: equal-weight mixture of isotropic Gaussians on a circle (FFJORD's 4/1.414, 0.5/1.414).
GAUSSIANS_RADIUS = 4.0 / math.sqrt(2.0)
GAUSSIANS_STD = 0.5 / math.sqrt(2.0)
_ANGLES = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
GAUSSIANS_CENTRES = GAUSSIANS_RADIUS * torch.stack([_ANGLES.cos(), _ANGLES.sin()], dim=1)  # float64 [8, 2]

# checkerboard: uniform on the 8 squares of side CHECKER_SIDE inside [-2 side, 2 side)^2 whose
# integer coordinates floor(x / side) sum to an even number.
CHECKER_SIDE = 2.0
CHECKER_AREA = 8 * CHECKER_SIDE**2


def _uniform(n: int, g: torch.Generator | None, low: float = 0.0, high: float = 1.0) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def _coin(n: int, g: torch.Generator | None) -> Tensor:
    """Bernoulli(1/2) as a bool tensor [n]."""
    return torch.randint(0, 2, (n,), generator=g).bool()


def _polar(radius: Tensor, angle: Tensor) -> Tensor:
    return torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)


def _eight_gaussians(n: int, g: torch.Generator | None) -> Tensor:
    component = torch.randint(0, 8, (n,), generator=g)
    return GAUSSIANS_CENTRES[component] + GAUSSIANS_STD * torch.randn(n, 2, generator=g)


def _moons(n: int, g: torch.Generator | None) -> Tensor:
    """sklearn's make_moons(noise=0.1), then x 2 + (-1, -0.2)."""
    theta = _uniform(n, g, 0.0, math.pi)
    upper = torch.stack([theta.cos(), theta.sin()], dim=1)
    lower = torch.stack([1.0 - theta.cos(), 0.5 - theta.sin()], dim=1)
    x = torch.where(_coin(n, g)[:, None], upper, lower) + 0.1 * torch.randn(n, 2, generator=g)
    return 2.0 * x + torch.tensor([-1.0, -0.2])


def _circles(n: int, g: torch.Generator | None) -> Tensor:
    """sklearn's make_circles(factor=0.5, noise=0.08), then x 3."""
    radius = torch.where(_coin(n, g), 1.0, 0.5)
    x = _polar(radius, _uniform(n, g, 0.0, 2 * math.pi)) + 0.08 * torch.randn(n, 2, generator=g)
    return 3.0 * x


def _rings(n: int, g: torch.Generator | None) -> Tensor:
    """Four concentric circles of radii 0.75, 1.5, 2.25, 3 plus N(0, 0.08^2) noise."""
    radius = 0.75 * (1 + torch.randint(0, 4, (n,), generator=g)).float()
    return _polar(radius, _uniform(n, g, 0.0, 2 * math.pi)) + 0.08 * torch.randn(n, 2, generator=g)


def _pinwheel(n: int, g: torch.Generator | None) -> Tensor:
    """Five arms: radial N(1, 0.3^2), tangential N(0, 0.1^2), rotated by arm + 0.25 exp(radial)."""
    arm = torch.randint(0, 5, (n,), generator=g).float()
    features = torch.randn(n, 2, generator=g) * torch.tensor([0.3, 0.1]) + torch.tensor([1.0, 0.0])
    angle = arm * (2 * math.pi / 5) + 0.25 * features[:, 0].exp()
    c, s = angle.cos(), angle.sin()
    rotated = torch.stack([c * features[:, 0] + s * features[:, 1], -s * features[:, 0] + c * features[:, 1]], 1)
    return 2.0 * rotated


def _two_spirals(n: int, g: torch.Generator | None) -> Tensor:
    """Two interleaved spirals up to 540 degrees, U[0, 0.5)^2 jitter, / 3, plus N(0, 0.1^2)."""
    t = _uniform(n, g).sqrt() * (3 * math.pi)
    arm = torch.stack([-t.cos() * t, t.sin() * t], dim=1) + 0.5 * torch.rand(n, 2, generator=g)
    sign = torch.where(_coin(n, g), 1.0, -1.0)[:, None]
    return sign * arm / 3.0 + 0.1 * torch.randn(n, 2, generator=g)


def _checkerboard(n: int, g: torch.Generator | None) -> Tensor:
    """Column uniform on [-2, 2), row one of the two unit squares of that column's colour, x 2."""
    x1 = _uniform(n, g, -2.0, 2.0)
    x2 = _uniform(n, g) - 2.0 * _coin(n, g).float() + torch.floor(x1).remainder(2)
    return CHECKER_SIDE * torch.stack([x1, x2], dim=1)


_SAMPLERS: dict[str, Callable[[int, torch.Generator | None], Tensor]] = {
    "8gaussians": _eight_gaussians,
    "moons": _moons,
    "circles": _circles,
    "checkerboard": _checkerboard,
    "pinwheel": _pinwheel,
    "2spirals": _two_spirals,
    "rings": _rings,
}
NAMES: tuple[str, ...] = tuple(_SAMPLERS)
HAS_TRUE_DENSITY: tuple[str, ...] = ("8gaussians", "checkerboard")


def check_name(name: str) -> None:
    """Raise ``ValueError`` listing ``NAMES`` unless ``name`` is one of them."""
    if name not in _SAMPLERS:
        raise ValueError(f"unknown 2-D density {name!r}; choose one of {list(NAMES)}")


def sample(name: str, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` i.i.d. points of density ``name``: float32 [n, 2] on the CPU."""
    check_name(name)
    return _SAMPLERS[name](n, generator).float()


def true_log_prob(name: str, x: Tensor) -> Tensor:
    """Exact log density (nats) [B] at points ``x`` [B, 2] of the density ``sample`` draws from."""
    check_name(name)
    if name == "8gaussians":
        centres = GAUSSIANS_CENTRES.to(x)
        sq_dist = (x[:, None, :] - centres).pow(2).sum(-1)
        log_normal = -0.5 * sq_dist / GAUSSIANS_STD**2 - math.log(2 * math.pi * GAUSSIANS_STD**2)
        return torch.logsumexp(log_normal, dim=1) - math.log(8)
    if name == "checkerboard":
        cell = torch.floor(x / CHECKER_SIDE)
        inside = (cell >= -2).all(1) & (cell <= 1).all(1) & (cell.sum(1).remainder(2) == 0)
        return torch.where(inside, -math.log(CHECKER_AREA), -math.inf).to(x.dtype)
    raise NotImplementedError(f"no closed-form density for {name!r}; available for {list(HAS_TRUE_DENSITY)}")
