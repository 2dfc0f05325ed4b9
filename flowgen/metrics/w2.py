"""Exact 2-Wasserstein distance between two equal-size point clouds.

For empirical measures with n points each and uniform weights, the optimal plan is a
permutation (Birkhoff), so

    W2(a, b) = sqrt( min_sigma (1/n) sum_i ||a_i - b_sigma(i)||^2 ),

found exactly by the Hungarian algorithm (scipy's ``linear_sum_assignment``, warm-started by
``flowgen.matching.assignment``); O(n^3), fine for the ~1000-point toy evaluations. Units:
those of the points.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowgen.matching.assignment import min_cost_assignment


def w2_distance(a: Tensor, b: Tensor) -> float:
    """W2 between point clouds a [n, ...] and b [n, ...] (flattened per point)."""
    if a.shape != b.shape:
        raise ValueError(f"W2 needs clouds of equal shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    a2, b2 = a.reshape(a.shape[0], -1).double().cpu(), b.reshape(b.shape[0], -1).double().cpu()
    cost = torch.cdist(a2, b2, compute_mode="donot_use_mm_for_euclid_dist").pow(2).numpy()
    rows, cols = min_cost_assignment(cost)
    return math.sqrt(float(cost[rows, cols].mean()))
