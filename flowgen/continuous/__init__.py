"""Continuous normalizing flows (pure torch), shared by FFJORD and flow matching.

Time convention (design.md section 3): t = 0 is the noise (prior) side, t = 1 the data side;
dx/dt = v(t, x). Log densities integrate the divergence backwards from data to noise,

    log p1(x1) = log p0(x0) - integral_0^1 div v(t, x_t) dt       (nats).

- ``vector_field``: the ``v(t, x, **cond)`` interface and an NFE-counting wrapper.
- ``solver``: ``SolverOptions`` and ``odeint_solve`` (torchdiffeq, optional seminorm adjoint).
- ``divergence``: exact (one autograd pass per dimension) and Hutchinson (probe fixed per solve).
- ``regularizers``: RNODE's kinetic energy and Jacobian Frobenius norm.
- ``dynamics``: the augmented right-hand side (x, delta log p, regularisers) of one solve.
- ``block``: ``CNFBlock``, one ODE map as a bijection data -> noise with its log-det.
- ``cnf``: ``ContinuousFlow``, preprocessing + CNF blocks + prior with ``log_prob``/``sample``.
- ``multiscale``: FFJORD's multiscale image architecture (squeeze, CNF blocks, factor-out).
- ``ffjord``: the ``build_ffjord`` model builder.
"""

from flowgen.continuous.block import CNFBlock
from flowgen.continuous.cnf import ContinuousFlow
from flowgen.continuous.divergence import draw_probe, exact_divergence, hutchinson_divergence
from flowgen.continuous.solver import SolverOptions, odeint_solve
from flowgen.continuous.vector_field import CountingField, VectorField

__all__ = [
    "CNFBlock",
    "ContinuousFlow",
    "CountingField",
    "SolverOptions",
    "VectorField",
    "draw_probe",
    "exact_divergence",
    "hutchinson_divergence",
    "odeint_solve",
]
