"""One continuous normalizing flow as a bijection: data side (t = 1) <-> noise side (t = 0).

``CNFBlock(field)`` maps x (data side) to z by integrating dx/dt = v(t, x) from t = 1 to
t = 0, with log-determinant

    logdet = log|det dz/dx| = -integral_0^1 div v(t, x_t) dt        (nats, Tensor[B]),

so log p(x) = log p_Z(z) + logdet as for discrete flows; ``inverse(z)`` integrates from
t = 0 to 1 without the divergence (sampling). The solver settings, the probe generator and
the regularisers to integrate are attributes that the owning model sets before each call
(``ContinuousFlow`` chooses training or evaluation settings); after a log-density solve,
``last_regularizers`` holds RNODE's integrals per sample, and ``stats()`` the NFE of the
last solve (``nfe_backward``: adjoint evaluations of its backward pass).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowgen.continuous.divergence import DIVERGENCES, PROBES, draw_probe
from flowgen.continuous.dynamics import AugmentedDynamics, EndTime, RescaledField
from flowgen.continuous.regularizers import check_names
from flowgen.continuous.solver import SolverOptions, controlled_norm, odeint_solve
from flowgen.continuous.vector_field import CountingField
from flowgen.flows.base import Bijection


class CNFBlock(Bijection):
    """Args:
        field: the vector field v(t, x, **cond) (``VectorField`` interface).
        divergence: "exact" (small D) or "hutchinson" (probe drawn once per solve).
        probe: "rademacher" or "gaussian" Hutchinson probes.
        options: default ``SolverOptions`` (the owning model overrides them per call).
        learn_end_time: learn the end time T (integrate v over [0, T]; FFJORD's train_T).
        end_time: T, or its initial value when learned.
    """

    def __init__(
        self,
        field: nn.Module,
        divergence: str = "exact",
        probe: str = "rademacher",
        options: SolverOptions | None = None,
        learn_end_time: bool = False,
        end_time: float = 1.0,
    ) -> None:
        super().__init__()
        if divergence not in DIVERGENCES:
            raise ValueError(f"unknown divergence {divergence!r}; choose one of {DIVERGENCES}")
        if probe not in PROBES:
            raise ValueError(f"unknown Hutchinson probe {probe!r}; choose one of {PROBES}")
        self.field = field
        self.divergence = divergence
        self.probe = probe
        self.end_time: EndTime | None = None
        if learn_end_time or end_time != 1.0:
            self.end_time = EndTime(end_time)
            self.end_time.sqrt_end_time.requires_grad_(learn_end_time)
        # set by the owning model before each call
        self.options = options or SolverOptions()
        self.generator: torch.Generator | None = None
        self.regularizers: tuple[str, ...] = ()
        # results of the last solve
        self.last_regularizers: dict[str, Tensor] = {}
        self.last_probe: Tensor | None = None
        self._last_solve: dict[str, CountingField] = {}  # a plain dict: not a registered submodule

    def rescaled_field(self) -> RescaledField:
        """f(s, x) = T v(T s, x) over s in [0, 1] (f = v when T = 1)."""
        return RescaledField(self.field, self.end_time)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(z, log|det dz/dx|) by solving the augmented system from t = 1 (x) to t = 0 (z)."""
        check_names(self.regularizers)
        probe = None
        if self.divergence == "hutchinson":
            probe = draw_probe(tuple(x.shape), self.probe, self.generator, x.device, x.dtype)
        self.last_probe = probe
        dynamics = CountingField(AugmentedDynamics(self.rescaled_field(), self.divergence, probe, self.regularizers))
        zeros = x.new_zeros(x.shape[0])
        state = (x, zeros, *(zeros for _ in self.regularizers))
        times = torch.tensor([1.0, 0.0], device=x.device, dtype=x.dtype)
        solution = odeint_solve(dynamics, state, times, self.options, norm=controlled_norm(2))
        dynamics.mark()
        self._last_solve["counter"] = dynamics
        z, delta, *integrals = (s[-1] for s in solution)
        # d r/dt = rate integrated from 1 to 0 gives r(0) = -integral_0^1 rate dt
        self.last_regularizers = {name: -r for name, r in zip(self.regularizers, integrals)}
        return z, delta

    def inverse(self, z: Tensor) -> Tensor:
        """x at t = 1 from z at t = 0 (no divergence)."""
        return self.trajectory(z, torch.tensor([0.0, 1.0]))[-1]

    def trajectory(self, z: Tensor, times: Tensor) -> Tensor:
        """States [len(times), *z.shape] at increasing ``times`` in [0, 1] (0: z, 1: data side)."""
        field = CountingField(self.rescaled_field())
        states = odeint_solve(field, z, times.to(device=z.device, dtype=z.dtype), self.options)
        field.mark()
        self._last_solve["counter"] = field
        return states

    def learned_end_time(self) -> float | None:
        return None if self.end_time is None else float(self.end_time().detach())

    def stats(self) -> dict[str, int]:
        """NFE of the last solve: ``nfe_forward`` and ``nfe_backward`` (adjoint evaluations)."""
        counter = self._last_solve.get("counter")
        if counter is None:
            return {"nfe_forward": 0, "nfe_backward": 0}
        return {"nfe_forward": counter.nfe_forward, "nfe_backward": counter.nfe_backward}
