"""RNODE regularisers (Finlay et al. 2020): penalties on the dynamics that keep them simple.

Rates integrated over the solve (dimension-averaged so weights carry over across data sizes,
like the bits/dim loss they are added to):

- kinetic energy:      K = integral_0^1 ||v(t, x_t)||^2 / D dt,
- Jacobian Frobenius:  J = integral_0^1 ||dv/dx (t, x_t)||_F^2 / D dt,  estimated with the
  Hutchinson vector-Jacobian product of the divergence (exact rows with the exact divergence).

The training loss adds lambda_K E[K] + lambda_J E[J]. The regulariser integrals are part of
the ODE state but are left out of adaptive step-size control (``solver.controlled_norm``).
"""

from __future__ import annotations

from torch import Tensor

REGULARIZERS = ("kinetic_energy", "jacobian_frobenius")


def check_names(names: tuple[str, ...]) -> None:
    unknown = sorted(set(names) - set(REGULARIZERS))
    if unknown:
        raise ValueError(f"unknown regulariser(s) {unknown}; choose from {list(REGULARIZERS)}")


def kinetic_energy_rate(v: Tensor) -> Tensor:
    """||v||^2 / D per sample [B]."""
    return v.pow(2).reshape(v.shape[0], -1).mean(dim=1)


def jacobian_frobenius_rate(sq_frobenius: Tensor, num_dims: int) -> Tensor:
    """||dv/dx||_F^2 / D per sample [B], from the (estimated) squared Frobenius norm."""
    return sq_frobenius / num_dims
