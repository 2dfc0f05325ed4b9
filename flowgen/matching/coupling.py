"""Couplings of a source batch x0 with a data batch x1.

``independent``: pairs (x0_i, x1_i) as drawn (I-CFM). ``ot``: minibatch exact optimal
transport (OT-CFM, Tong et al. 2024): the permutation sigma minimising
sum_i ||x0_sigma(i) - x1_i||^2, found by the Hungarian algorithm (scipy's
``linear_sum_assignment``) on the squared Euclidean cost of the flattened samples. Every x0
and every x1 is used exactly once (no sampling from the plan with replacement). Under DDP
the pairing is per rank (each rank pairs its own batch).
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

COUPLINGS = ("independent", "ot")


def ot_permutation(x0: Tensor, x1: Tensor) -> Tensor:
    """Long [B]: index into x0 so that (x0[perm][i], x1[i]) is the minimal-cost pairing."""
    if x0.shape != x1.shape:
        raise ValueError(f"OT pairing needs equal batch shapes, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    cost = torch.cdist(x1.reshape(x1.shape[0], -1).double(), x0.reshape(x0.shape[0], -1).double()).pow(2)
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    perm = torch.empty(x1.shape[0], dtype=torch.long)
    perm[torch.as_tensor(rows)] = torch.as_tensor(cols)
    return perm.to(x0.device)


def pair(x0: Tensor, x1: Tensor, coupling: str = "independent") -> tuple[Tensor, Tensor]:
    """(x0 reordered, x1) for ``coupling`` in ``COUPLINGS``."""
    if coupling == "independent":
        return x0, x1
    if coupling == "ot":
        with torch.no_grad():
            perm = ot_permutation(x0, x1)
        return x0[perm], x1
    raise ValueError(f"unknown coupling {coupling!r}; choose one of {COUPLINGS}")
