"""Brute-force log|det J| by autograd, to check the analytic log-dets of flow layers.

Costs one backward pass per dimension of each sample: for small inputs only (tests, debugging).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def brute_force_logdet(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """log|det d fn(x_b) / d x_b| for each sample b of x [B, ...], as Tensor[B].

    ``fn`` maps a batch [1, ...] to a batch [1, ...] of the same number of elements
    (for a flow layer pass ``lambda v: layer(v)[0]``); the Jacobian is taken per sample.
    """
    logdets = []
    for b in range(x.shape[0]):
        xb = x[b : b + 1]
        jac = torch.autograd.functional.jacobian(lambda v: fn(v).reshape(-1), xb).reshape(xb.numel(), xb.numel())
        logdets.append(torch.linalg.slogdet(jac).logabsdet)
    return torch.stack(logdets)
