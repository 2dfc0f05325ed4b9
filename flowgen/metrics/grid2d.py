"""Densities of 2-D models evaluated on a regular grid: normalisation and exact KL.

With cells of area dA on [-b, b]^2, the integral of p is approximated by sum exp(log p) dA,
and KL(p || q) = integral p (log p - log q) by sum over cells with p > 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def grid_points(bound: float, num_points: int, device: torch.device | str = "cpu") -> tuple[Tensor, float]:
    """Cell centres [num_points**2, 2] of [-bound, bound]^2 (row-major, y outer) and the cell area."""
    step = 2.0 * bound / num_points
    axis = -bound + step * (torch.arange(num_points, device=device, dtype=torch.float32) + 0.5)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1), step * step


@torch.no_grad()
def log_prob_on_grid(
    log_prob_fn: Callable[[Tensor], Tensor], bound: float, num_points: int, batch_size: int = 16384, device="cpu"
) -> tuple[Tensor, float]:
    """log p at the grid's cell centres as [num_points, num_points] (row = y) and the cell area."""
    points, area = grid_points(bound, num_points, device)
    values = torch.cat([log_prob_fn(chunk) for chunk in points.split(batch_size)])
    return values.reshape(num_points, num_points), area


def integral(log_p: Tensor, cell_area: float) -> float:
    """Riemann sum of exp(log p) over the grid."""
    return float(torch.exp(log_p.double()).sum() * cell_area)


def kl_divergence(log_p: Tensor, log_q: Tensor, cell_area: float) -> float:
    """KL(p || q) in nats from log densities on the same grid (cells where p = 0 contribute 0)."""
    log_p, log_q = log_p.double(), log_q.double()
    p = torch.exp(log_p)
    support = p > 0
    return float((p[support] * (log_p[support] - log_q[support])).sum() * cell_area)
