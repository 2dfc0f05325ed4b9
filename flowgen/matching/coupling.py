"""Couplings of a source batch x0 with a data batch x1.

``independent``: pairs (x0_i, x1_i) as drawn (I-CFM). ``ot``: minibatch exact optimal
transport (OT-CFM, Tong et al. 2024): the permutation sigma minimising
sum_i ||x0_sigma(i) - x1_i||^2, found by the Hungarian algorithm (scipy's
``linear_sum_assignment``, warm-started by ``assignment.min_cost_assignment``) on the squared
Euclidean cost of the flattened samples. Every x0 and every x1 is used exactly once (no
sampling from the plan with replacement).

Under DDP, ``ot`` pairs each rank's own batch (B per rank, the torchcfm behaviour);
``ot_global`` gathers the batches of all ranks, solves one assignment over the W * B samples
(every rank solves the same problem, so the result is identical without communication of
the plan) and gives each rank the sources matched to its own data: a closer approximation
of the full OT plan at O((W B)^3) cost. Without an initialised process group the two agree.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from flowgen.matching.assignment import min_cost_assignment

COUPLINGS = ("independent", "ot", "ot_global")


def ot_permutation(x0: Tensor, x1: Tensor) -> Tensor:
    """Long [B]: index into x0 so that (x0[perm][i], x1[i]) is the minimal-cost pairing."""
    if x0.shape[1:] != x1.shape[1:]:
        raise ValueError(f"OT pairing needs equal sample shapes, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    if x0.shape[0] < x1.shape[0]:
        raise ValueError(f"OT pairing needs at least as many sources as targets, got {x0.shape[0]} < {x1.shape[0]}")
    a, b = x1.reshape(x1.shape[0], -1).double(), x0.reshape(x0.shape[0], -1).double()
    # ||a_i - b_j||^2 = ||a_i||^2 + ||b_j||^2 - 2 a_i.b_j (cdist's matmul form, without its sqrt and square)
    cost = torch.addmm(a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :], a, b.T, alpha=-2.0).clamp_min_(0.0)
    rows, cols = min_cost_assignment(cost.cpu().numpy())
    perm = torch.empty(x1.shape[0], dtype=torch.long)
    perm[torch.as_tensor(rows)] = torch.as_tensor(cols)
    return perm.to(x0.device)


def _gather(x: Tensor) -> tuple[Tensor, int]:
    """(concatenation of every rank's x along dim 0, this rank's offset); batch sizes may differ."""
    world = dist.get_world_size()
    size = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    sizes_list = [int(s) for s in sizes]
    padded = x.new_zeros((max(sizes_list), *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded.contiguous())
    offset = sum(sizes_list[: dist.get_rank()])
    return torch.cat([p[:n] for p, n in zip(parts, sizes_list)]), offset


def global_ot_sources(x0: Tensor, x1: Tensor) -> Tensor:
    """Sources [B, ...] for this rank's x1 from the OT assignment of all ranks' batches."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x0[ot_permutation(x0, x1)]
    all_x0, _ = _gather(x0.detach())
    all_x1, offset = _gather(x1.detach())
    perm = ot_permutation(all_x0, all_x1)
    return all_x0[perm[offset : offset + x1.shape[0]]]


def pair(x0: Tensor, x1: Tensor, coupling: str = "independent") -> tuple[Tensor, Tensor]:
    """(x0 reordered, x1) for ``coupling`` in ``COUPLINGS``."""
    if coupling == "independent":
        return x0, x1
    if coupling == "ot":
        with torch.no_grad():
            perm = ot_permutation(x0, x1)
        return x0[perm], x1
    if coupling == "ot_global":
        with torch.no_grad():
            return global_ot_sources(x0, x1), x1
    raise ValueError(f"unknown coupling {coupling!r}; choose one of {COUPLINGS}")
