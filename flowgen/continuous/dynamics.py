"""Right-hand sides of CNF solves: the (time-rescaled) field and the augmented log-density system.

With end time T (1 unless learned), the solver integrates over s in [0, 1] the rescaled
field f(s, x) = T v(T s, x), which maps the same endpoints as v over t in [0, T].

``AugmentedDynamics`` is the right-hand side of one log-density solve of the state
(x, delta, r_1, ..., r_k):

    dx/ds = f(s, x),   d delta/ds = div f(s, x),   d r_j/ds = rate_j(s, x),

so that integrating from s = 1 (data) to s = 0 (noise) with delta(1) = 0 gives
delta(0) = -integral_0^1 div f ds = log|det dx0/dx1| and -r_j(0) the regulariser integrals.
One instance is made per solve and holds that solve's Hutchinson probe, so every
evaluation of the solve, the adjoint's backward ones included, uses the same probe.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from flowgen.continuous import divergence as div_mod
from flowgen.continuous.regularizers import jacobian_frobenius_rate, kinetic_energy_rate


class EndTime(nn.Module):
    """A learned end time T = sqrt_T^2 > 0 (FFJORD's parametrisation), initialised at ``init``."""

    def __init__(self, init: float = 1.0) -> None:
        super().__init__()
        if init <= 0:
            raise ValueError(f"end time must be positive, got {init}")
        self.sqrt_end_time = nn.Parameter(torch.tensor(float(init)).sqrt())

    def forward(self) -> Tensor:
        return self.sqrt_end_time.pow(2)


class RescaledField(nn.Module):
    """f(s, x) = T v(T s, x) with T = ``end_time()`` (None: f = v). The end-time module is a
    submodule, so the adjoint method finds its parameter among the solve's parameters."""

    def __init__(self, field: nn.Module, end_time: EndTime | None = None, cond: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.field = field
        self.end_time = end_time
        self.cond = cond or {}

    def forward(self, s: Tensor, x: Tensor) -> Tensor:
        if self.end_time is None:
            return self.field(s, x, **self.cond)
        end = self.end_time().to(x.dtype)
        return end * self.field(end * s, x, **self.cond)


class AugmentedDynamics(nn.Module):
    """(x, delta, *r) -> (f, div f, *rates) for one solve; see the module docstring.

    Args:
        field: f(s, x), e.g. a ``RescaledField``.
        divergence: "exact" or "hutchinson".
        probe: the Hutchinson probe of this solve (shape of x), None for "exact".
        regularizers: names from ``regularizers.REGULARIZERS``, in state order.
    """

    def __init__(self, field: nn.Module, divergence: str, probe: Tensor | None, regularizers: tuple[str, ...] = ()) -> None:
        super().__init__()
        if divergence not in div_mod.DIVERGENCES:
            raise ValueError(f"unknown divergence {divergence!r}; choose one of {div_mod.DIVERGENCES}")
        if divergence == "hutchinson" and probe is None:
            raise ValueError("the Hutchinson divergence needs a probe drawn for the solve")
        self.field = field
        self.divergence = divergence
        self.probe = probe
        self.regularizers = tuple(regularizers)

    def forward(self, s: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        x = state[0]
        # graph needed when the caller differentiates (training, adjoint backward); under
        # torch.no_grad (evaluation) the divergence still needs autograd, then is detached
        keep_graph = torch.is_grad_enabled()
        need_frobenius = "jacobian_frobenius" in self.regularizers
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            v = self.field(s, x)
            if self.divergence == "exact":
                div, sq_frob = div_mod.exact_divergence(v, x, create_graph=keep_graph, frobenius=need_frobenius)
            else:
                div, sq_frob = div_mod.hutchinson_divergence(v, x, self.probe, create_graph=keep_graph)
        rates = []
        for name in self.regularizers:
            if name == "kinetic_energy":
                rates.append(kinetic_energy_rate(v))
            else:
                rates.append(jacobian_frobenius_rate(sq_frob, x[0].numel()))
        out = (v, div, *rates)
        if not keep_graph:
            out = tuple(o.detach() for o in out)
        return out
