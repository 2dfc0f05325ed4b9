"""Divergence div v = tr(dv/dx) of a vector field, exact or by Hutchinson's estimator.

Both functions take the field's output ``v`` [B, ...] computed from ``x`` [B, ...] with
autograd enabled (samples independent: no batch statistics in the network) and return
per-sample Tensors [B]:

- ``exact_divergence``: sum_i dv_i/dx_i with one autograd pass per dimension D (small D),
  and the squared Frobenius norm ||dv/dx||_F^2 = sum_i ||grad v_i||^2 from the same rows.
- ``hutchinson_divergence``: with a probe e (E[e e^T] = I), one vector-Jacobian product
  g = e^T (dv/dx) gives the unbiased estimates tr(dv/dx) ~ g . e and ||dv/dx||_F^2 ~ ||g||^2
  (Hutchinson 1989; FFJORD; RNODE reuses g for its Jacobian penalty).

Rademacher probes (entries +-1, the default) have lower variance than Gaussian ones: the
variance of e^T A e is 2 sum_{i != j} A_ij^2 (symmetrised A) for Rademacher and
2 ||A||_F^2 for Gaussian. The probe is drawn once per ODE solve by ``draw_probe`` and reused
at every function evaluation of that solve, including the adjoint's backward pass.

``create_graph=True`` keeps the estimate differentiable (training); with False the results
carry no graph (evaluation under ``torch.no_grad``).
"""

from __future__ import annotations

import torch
from torch import Tensor

PROBES = ("rademacher", "gaussian")
DIVERGENCES = ("exact", "hutchinson")


def draw_probe(
    shape: tuple[int, ...], kind: str = "rademacher", generator: torch.Generator | None = None,
    device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
) -> Tensor:
    """A Hutchinson probe of ``shape``: Rademacher (+-1) or standard Gaussian entries."""
    if kind == "rademacher":
        return torch.randint(0, 2, shape, generator=generator, device=device).to(dtype) * 2 - 1
    if kind == "gaussian":
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    raise ValueError(f"unknown Hutchinson probe {kind!r}; choose one of {PROBES}")


def _grad(outputs: Tensor, x: Tensor, grad_outputs: Tensor, create_graph: bool) -> Tensor:
    (g,) = torch.autograd.grad(outputs, x, grad_outputs, create_graph=create_graph, retain_graph=True, allow_unused=True)
    return torch.zeros_like(x) if g is None else g


def exact_divergence(v: Tensor, x: Tensor, create_graph: bool = False, frobenius: bool = False) -> tuple[Tensor, Tensor | None]:
    """(tr(dv/dx) [B], ||dv/dx||_F^2 [B] if ``frobenius`` else None), D autograd passes."""
    batch = x.shape[0]
    v_flat = v.reshape(batch, -1)
    div = v.new_zeros(batch)
    sq_frob = v.new_zeros(batch) if frobenius else None
    ones = torch.ones_like(v_flat[:, 0])
    for i in range(v_flat.shape[1]):
        row = _grad(v_flat[:, i], x, ones, create_graph).reshape(batch, -1)  # d v_i / d x for every sample
        div = div + row[:, i]
        if frobenius:
            sq_frob = sq_frob + row.pow(2).sum(dim=1)
    return div, sq_frob


def hutchinson_divergence(v: Tensor, x: Tensor, probe: Tensor, create_graph: bool = False) -> tuple[Tensor, Tensor]:
    """(e^T (dv/dx) e [B], ||e^T dv/dx||^2 [B]): unbiased estimates of the trace and of
    ||dv/dx||_F^2 from one vector-Jacobian product with ``probe`` e (shape of x)."""
    batch = x.shape[0]
    g = _grad(v, x, probe, create_graph)
    return (g * probe).reshape(batch, -1).sum(dim=1), g.pow(2).reshape(batch, -1).sum(dim=1)
